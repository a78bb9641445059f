-- The services whose marts this pass rebuilds, with their generation and the UTC days it rebuilds
-- them for: the days of the pass's partition range on which they have events (v1: service_events)
-- or records (v2: service_event_records, by create_at), and the days the loader queued for them
-- (mart_queued; a queued service is v2 when service_event_records holds it, one probe); from the
-- first of those days to the last. Staged and analysed before anything
-- joins it, so the planner knows how many services the per-service ranges loop over.
-- Every read is a probe of an index led by service_id: the distinct services by a skip from one to
-- the next (stored_service_ids, migration 0010; stored_record_service_ids, migration 0013), then
-- each one's first and last row in the range. Not the BRIN index of occurred_at: its ranges widen
-- wherever a load fills free space that a vacuum left in old pages, and a day's lookup then reads
-- most of the table (bench_marts.py, 3,650 days).
create temporary table mart_services on commit drop as
with partition_range as (
    select
        (min(days.day) - date '1970-01-01')::bigint * 86400000 as start_ms,
        (max(days.day) + 1 - date '1970-01-01')::bigint * 86400000 as end_ms
    from unnest(%(partition_days)s::date[]) as days (day)
),

partition_services as (
    select
        service_ids.service_id,
        'v1' as generation,
        (to_timestamp(range_events.first_ms / 1000.0) at time zone 'UTC')::date as first_day,
        (to_timestamp(range_events.last_ms / 1000.0) at time zone 'UTC')::date as last_day
    from stored_service_ids() as service_ids
    cross join partition_range
    -- sqlfluff 4.5 wants this cross join lateral (after a cross join) indented as no other join
    -- noqa: disable=LT02
    cross join lateral (
        -- the first and the last event in the range: the planner makes min and max one probe of
        -- the key index each (a forward and a backward scan, limit 1)
        select
            min(events.occur_time) as first_ms,
            max(events.occur_time) as last_ms
        from service_events as events
        where
            events.service_id = service_ids.service_id
            and events.occur_time >= partition_range.start_ms
            and events.occur_time < partition_range.end_ms
    ) as range_events
    -- noqa: enable=LT02
    where range_events.first_ms is not null
),

partition_record_services as (
    select
        service_ids.service_id,
        'v2' as generation,
        (to_timestamp(range_records.first_ms / 1000.0) at time zone 'UTC')::date as first_day,
        (to_timestamp(range_records.last_ms / 1000.0) at time zone 'UTC')::date as last_day
    from stored_record_service_ids() as service_ids
    cross join partition_range
    -- noqa: disable=LT02
    cross join lateral (
        -- the first and the last record created in the range: a probe each of the index
        -- (service_id, create_at)
        select
            min(records.create_at) as first_ms,
            max(records.create_at) as last_ms
        from service_event_records as records
        where
            records.service_id = service_ids.service_id
            and records.create_at >= partition_range.start_ms
            and records.create_at < partition_range.end_ms
    ) as range_records
    -- noqa: enable=LT02
    where range_records.first_ms is not null
),

scoped_days as (
    select
        partition_services.service_id,
        partition_services.generation,
        partition_services.first_day,
        partition_services.last_day
    from partition_services

    union all

    select
        partition_record_services.service_id,
        partition_record_services.generation,
        partition_record_services.first_day,
        partition_record_services.last_day
    from partition_record_services

    union all

    select
        mart_queued.service_id,
        case when record_service.found then 'v2' else 'v1' end as generation,
        mart_queued.event_date as first_day,
        mart_queued.event_date as last_day
    from mart_queued
    left join lateral (
        select true as found
        from service_event_records as records
        where records.service_id = mart_queued.service_id
        limit 1 -- noqa: AM09
    ) as record_service on true
),

final as (
    select
        scoped_days.service_id,
        scoped_days.generation,
        min(scoped_days.first_day) as first_day,
        max(scoped_days.last_day) as last_day,
        (min(scoped_days.first_day) - date '1970-01-01')::bigint * 86400000 as first_ms,
        (max(scoped_days.last_day) + 1 - date '1970-01-01')::bigint * 86400000 as end_ms
    from scoped_days
    group by scoped_days.service_id, scoped_days.generation
)

select * from final
