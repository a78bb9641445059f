-- For each service in scope (mart_services), the range whose attempts its days can change.
-- v1 (service_events). Boundaries: the texts that start or end an attempt (is_deployment_boundary,
-- migration 0010), the predicate of the partial index service_events_deployment_boundary_idx; the
-- last one before a time is last_deployment_boundary (migration 0011).
-- lo: the last boundary before its first day is an open start (that attempt may end in the days)
-- or the first day's start. The attempts starting in [lo_ms, end_ms) are rebuilt.
-- hi (exclusive): the last day's end, or past the first boundary after it when the last attempt
-- is still open (null: to the end of the data).
-- v2 (service_event_records): an attempt is a service version, from its start record's create_at
-- (stage_event_records.sql). lo: the earliest of the first day's start, the last version start
-- before it (a new start in the days may supersede that version) and the start of every version
-- with a record created in the days (a late record can change an older version). hi
-- (exclusive): past the first version start after the last day (it decides whether the last
-- version is superseded), else the last day's end. The versions starting in [lo_ms, hi_ms), and
-- those with a record in the days, are read whole.
-- Each boundary or start is one probe of a partial index per service, however long the history.
create temporary table mart_scope on commit drop as
with v1_scope as (
    select
        services.service_id,
        services.generation,
        services.first_day,
        services.last_day,
        services.first_ms,
        services.end_ms,
        case
            when before_first.is_start then before_first.occur_time
            else services.first_ms
        end as lo_ms,
        case
            when not coalesce(before_end.is_start, false) then services.end_ms
            -- open at the end: read up to and including the next boundary (or to the end)
            else after_end.occur_time + 1
        end as hi_ms
    from mart_services as services
    left join lateral last_deployment_boundary(
        services.service_id, services.first_ms
    ) as before_first on true
    left join lateral last_deployment_boundary(
        services.service_id, services.end_ms
    ) as before_end on true
    left join lateral (
        select events.occur_time
        from service_events as events
        where
            events.service_id = services.service_id
            and events.occur_time >= services.end_ms
            and is_deployment_boundary(events.event_info)
        order by events.occur_time
        limit 1
    ) as after_end on true
    where services.generation = 'v1'
),

v2_scope as (
    select
        services.service_id,
        services.generation,
        services.first_day,
        services.last_day,
        services.first_ms,
        services.end_ms,
        least(services.first_ms, before_first.create_at, touched.first_start) as lo_ms,
        coalesce(after_end.create_at + 1, services.end_ms) as hi_ms
    from mart_services as services
    left join lateral last_version_start(
        services.service_id, services.first_ms
    ) as before_first on true
    left join lateral next_version_start(
        services.service_id, services.end_ms
    ) as after_end on true
    left join lateral ( -- noqa: ST05
        -- the earliest start of the versions with a record created in the days: the records of
        -- the days (one range of (service_id, create_at)), then a probe per version
        select min(version_start.create_at) as first_start
        from (
            select distinct records.service_version_id
            from service_event_records as records
            where
                records.service_id = services.service_id
                and records.create_at >= services.first_ms
                and records.create_at < services.end_ms
        ) as versions
        cross join lateral (
            select starts.create_at
            from service_event_records as starts
            where
                starts.service_id = services.service_id
                and starts.service_version_id = versions.service_version_id
                and is_deployment_start(starts.event_info)
            order by starts.create_at
            limit 1
        ) as version_start
    ) as touched on true
    where services.generation = 'v2'
),

final as (
    select * from v1_scope
    union all
    select * from v2_scope
)

select * from final
