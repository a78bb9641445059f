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
            -- the day as a range of the key (service_id, attempt_start): an equality on
            -- attempt_date leads the planner to the partial failure index (attempt_date,
            -- failure_cause), every service's failures of the day read for each pair
            and attempts.attempt_start
            >= (affected.attempt_date - date '1970-01-01')::bigint * 86400000
            and attempts.attempt_start
            < (affected.attempt_date + 1 - date '1970-01-01')::bigint * 86400000
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
