-- Rebuild analytics.deployment_failure_causes_daily for the affected (day, service) pairs from the attempts.
insert into analytics.deployment_failure_causes_daily (
    attempt_date, service_id, failure_cause, cause_category, failures, generation
)
with affected_failures as (
    select attempts.*
    from mart_affected_days as affected
    inner join analytics.deployment_attempts as attempts
        on
            affected.service_id = attempts.service_id
            and affected.attempt_date = attempts.attempt_date
    where attempts.outcome = 'failed'
),

final as (
    select
        affected_failures.attempt_date,
        affected_failures.service_id,
        affected_failures.failure_cause,
        coalesce(affected_failures.cause_category, 'unknown') as cause_category,
        count(*) as failures,
        affected_failures.generation
    from affected_failures
    group by
        affected_failures.attempt_date,
        affected_failures.service_id,
        affected_failures.failure_cause,
        coalesce(affected_failures.cause_category, 'unknown'),
        affected_failures.generation
)

select * from final
