-- The latest UTC day a load covered completely, when the last load finished, and when the marts were last rebuilt.
with succeeded as (
    select
        batches.window_start_ms,
        batches.window_end_ms,
        batches.finished_at
    from load_batches as batches
    where batches.status = 'succeeded'
),

complete_days as (
    select
        date '1970-01-01'
        + (succeeded.window_end_ms / 86400000)::integer - 1 as last_complete_day
    from succeeded
    where succeeded.window_end_ms / 86400000 > (succeeded.window_start_ms + 86399999) / 86400000
),

marts as (
    select max(outcomes.refreshed_at) as marts_refreshed_at
    from analytics.deployment_outcomes_daily as outcomes
),

final as (
    select
        (select max(complete_days.last_complete_day) from complete_days) as last_loaded_day,
        (select max(succeeded.finished_at) from succeeded) as last_load_finished_at,
        (
            select count(*) from load_batches as failed
            where failed.status = 'failed' and failed.started_at > now() - interval '7 days'
        )::integer as failed_loads_7d,
        marts.marts_refreshed_at
    from marts
)

select * from final
