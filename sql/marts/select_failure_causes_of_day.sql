-- The day's failures by phase and cause, most frequent first (asset metadata).
with day_failures as (
    select attempts.*
    from analytics.deployment_attempts as attempts
    where attempts.attempt_date = %(day)s and attempts.outcome = 'failed'
),

final as (
    select
        day_failures.failure_cause,
        day_failures.failure_phase,
        count(*) as failures,
        count(distinct day_failures.service_id) as services
    from day_failures
    group by day_failures.failure_cause, day_failures.failure_phase
)

select * from final
order by failures desc, failure_cause asc, failure_phase asc
