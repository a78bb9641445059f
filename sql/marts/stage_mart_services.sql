-- The services whose marts this pass rebuilds, with the UTC days it rebuilds them for: the pass's
-- partition days on which they have events, and the days the loader queued for them
-- (mart_queued); from the first of those days to the last. Staged and analysed before anything
-- joins it, so the planner knows how many services the per-service index ranges will loop over.
create temporary table mart_services on commit drop as
with partition_services as (
    select
        day_services.service_id,
        min(days.day) as first_day,
        max(days.day) as last_day
    from unnest(%(partition_days)s::date []) as days (day)
    cross join lateral (
        -- the day's rows, through the BRIN index of occurred_at
        select distinct events.service_id
        from service_events as events
        where
            events.occurred_at >= days.day::timestamp at time zone 'UTC'
            and events.occurred_at < (days.day + 1)::timestamp at time zone 'UTC'
    ) as day_services
    group by day_services.service_id
),

scoped_days as (
    select
        partition_services.service_id,
        partition_services.first_day,
        partition_services.last_day
    from partition_services

    union all

    select
        mart_queued.service_id,
        mart_queued.event_date as first_day,
        mart_queued.event_date as last_day
    from mart_queued
),

final as (
    select
        scoped_days.service_id,
        min(scoped_days.first_day) as first_day,
        max(scoped_days.last_day) as last_day,
        (min(scoped_days.first_day) - date '1970-01-01')::bigint * 86400000 as first_ms,
        (max(scoped_days.last_day) + 1 - date '1970-01-01')::bigint * 86400000 as end_ms
    from scoped_days
    group by scoped_days.service_id
)

select * from final
