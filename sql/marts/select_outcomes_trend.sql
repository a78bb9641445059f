-- All services' daily attempts, success rate and p95 time to running over the days up to the given one (asset metadata).
with recent as (
    select attempts.*
    from analytics.deployment_attempts as attempts
    where
        attempts.attempt_date > %(day)s::date - %(trend_days)s::integer
        and attempts.attempt_date <= %(day)s::date
),

final as (
    select
        recent.attempt_date,
        count(*) as attempts,
        count(*) filter (where recent.outcome = 'succeeded') as succeeded,
        count(*) filter (where recent.outcome = 'failed') as failed,
        count(*) filter (where recent.outcome = 'succeeded')::double precision
        / nullif(count(*) filter (where recent.outcome in ('succeeded', 'failed')), 0)
            as success_rate,
        percentile_cont(0.95) within group (
            order by recent.time_to_running_ms
        ) filter (where recent.outcome = 'succeeded') as p95_time_to_running_ms
    from recent
    group by recent.attempt_date
)

select * from final
order by attempt_date
