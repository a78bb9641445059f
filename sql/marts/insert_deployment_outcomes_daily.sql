-- Rebuild analytics.deployment_outcomes_daily for the affected (day, service) pairs from the attempts.
insert into analytics.deployment_outcomes_daily (
    attempt_date, service_id, attempts, succeeded, failed, superseded, in_progress, success_rate,
    p50_time_to_running_ms, p95_time_to_running_ms, generation
)
with affected_attempts as (
    select attempts.*
    from mart_affected_days as affected
    inner join analytics.deployment_attempts as attempts
        on
            affected.service_id = attempts.service_id
            and affected.attempt_date = attempts.attempt_date
),

counted as (
    select
        affected_attempts.attempt_date,
        affected_attempts.service_id,
        affected_attempts.generation,
        count(*) as attempts,
        count(*) filter (where affected_attempts.outcome = 'succeeded') as succeeded,
        count(*) filter (where affected_attempts.outcome = 'failed') as failed,
        count(*) filter (where affected_attempts.outcome = 'superseded') as superseded,
        count(*) filter (where affected_attempts.outcome = 'in_progress') as in_progress,
        percentile_cont(0.5) within group (
            order by affected_attempts.time_to_running_ms
        ) filter (where affected_attempts.outcome = 'succeeded') as p50_time_to_running_ms,
        percentile_cont(0.95) within group (
            order by affected_attempts.time_to_running_ms
        ) filter (where affected_attempts.outcome = 'succeeded') as p95_time_to_running_ms
    from affected_attempts
    group by
        affected_attempts.attempt_date,
        affected_attempts.service_id,
        affected_attempts.generation
),

final as (
    select
        counted.attempt_date,
        counted.service_id,
        counted.attempts,
        counted.succeeded,
        counted.failed,
        counted.superseded,
        counted.in_progress,
        counted.succeeded::double precision
        / nullif(counted.succeeded + counted.failed, 0) as success_rate,
        counted.p50_time_to_running_ms,
        counted.p95_time_to_running_ms,
        counted.generation
    from counted
)

select * from final
