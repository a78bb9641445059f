-- Deployment starts stored on the given days (v1 start events, v2 version start records) whose attempt is neither in deployment_attempts nor queued for a rebuild (expected: no rows).
-- A start the loader stored and queued waits for the next rebuild; one that is in neither place is
-- lost to the marts (a rebuild that missed it, events written around the loader) until its day is
-- rebuilt. Read by index at any history size: each service's starts of a day are one range of the
-- partial boundary index, and each start one probe of the attempts' and of the queue's key. The
-- subqueries are kept per row (OFFSET 0, LIMIT 1): flattened into joins, they let the planner
-- hash every boundary and every attempt when it misjudges how few rows the ranges select.
with days as (
    select
        (checked.day - date '1970-01-01')::bigint * 86400000 as start_ms,
        (checked.day + 1 - date '1970-01-01')::bigint * 86400000 as end_ms
    from unnest(%(days)s::date[]) as checked (day)
),

starts as (
    select distinct
        service_ids.service_id,
        day_starts.occur_time,
        (to_timestamp(day_starts.occur_time / 1000.0) at time zone 'UTC')::date as event_date
    from stored_service_ids() as service_ids
    cross join days
    cross join lateral (
        select events.occur_time
        from service_events as events
        where
            events.service_id = service_ids.service_id
            and events.occur_time >= days.start_ms
            and events.occur_time < days.end_ms
            and is_deployment_boundary(events.event_info)
            and is_deployment_start(events.event_info)
        offset 0 -- noqa: AM09
    ) as day_starts
),

record_starts as (
    -- v2: each version's start record opens its attempt at its create_at; a range of the partial
    -- start index (migration 0013) per service and day
    select distinct
        service_ids.service_id,
        day_starts.create_at as occur_time,
        (to_timestamp(day_starts.create_at / 1000.0) at time zone 'UTC')::date as event_date
    from stored_record_service_ids() as service_ids
    cross join days
    cross join lateral (
        select records.create_at
        from service_event_records as records
        where
            records.service_id = service_ids.service_id
            and records.create_at >= days.start_ms
            and records.create_at < days.end_ms
            and is_deployment_start(records.event_info)
        offset 0 -- noqa: AM09
    ) as day_starts
),

all_starts as (
    select
        starts.service_id,
        starts.occur_time,
        starts.event_date
    from starts
    union all
    select
        record_starts.service_id,
        record_starts.occur_time,
        record_starts.event_date
    from record_starts
),

final as (
    select
        starts.service_id,
        starts.occur_time as attempt_start,
        to_timestamp(starts.occur_time / 1000.0) as started_at
    from all_starts as starts
    left join lateral (
        select true as found
        from analytics.deployment_attempts as attempts
        where
            attempts.service_id = starts.service_id
            and attempts.attempt_start = starts.occur_time
        limit 1 -- noqa: AM09
    ) as attempt on true
    left join lateral (
        select true as found
        from mart_rebuild_queue as queue
        where
            queue.service_id = starts.service_id
            and queue.event_date = starts.event_date
        limit 1 -- noqa: AM09
    ) as queued on true
    where attempt.found is null and queued.found is null
)

select * from final
order by service_id asc, attempt_start asc
