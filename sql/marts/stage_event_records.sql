-- The v2 records in scope as deployment events, each assigned to its attempt: the attempt
-- derivation of new-version services, in this one file (README: "Marts over both generations").
-- Our reading of the v2 model (../shared/API.md is not explicit): each deployment start opens a
-- service version, so an attempt is a version; it starts at the create_at of the version's start
-- record (is_deployment_start, migration 0010: the start texts of the rules file); its records
-- are its events, at their first occurrence (create_at), each weighing its event_count. A
-- version without a start record (the one running before the data begins) has no attempt, as v1
-- events before a service's first start. The shape is that of v1's events in
-- stage_deployment_events.sql, which classifies both and derives outcomes, phases and causes once.
-- Read by version: the versions starting in the service's [lo_ms, hi_ms) (a range of the partial
-- start index) and those with a record created in its days (a range of (service_id, create_at)),
-- then each version's records (a range of (service_id, service_version_id, create_at)).
create temporary table deployment_record_stage on commit drop as
with started_versions as (
    -- the versions starting in [lo_ms, hi_ms). OFFSET 0 keeps each of these reads a subquery run
    -- once per service or version (see stage_deployment_events.sql)
    select
        scope.service_id,
        starts.service_version_id
    from mart_scope as scope
    cross join lateral (
        select records.service_version_id
        from service_event_records as records
        where
            scope.generation = 'v2'
            and records.service_id = scope.service_id
            and records.create_at >= scope.lo_ms
            and records.create_at < scope.hi_ms
            and is_deployment_start(records.event_info)
        offset 0 -- noqa: AM09
    ) as starts
),

touched_versions as (
    -- the versions with a record created in the days (a version without a start record too)
    select
        scope.service_id,
        day_records.service_version_id
    from mart_scope as scope
    cross join lateral (
        select records.service_version_id
        from service_event_records as records
        where
            scope.generation = 'v2'
            and records.service_id = scope.service_id
            and records.create_at >= scope.first_ms
            and records.create_at < scope.end_ms
        offset 0 -- noqa: AM09
    ) as day_records
),

versions as (
    select
        started_versions.service_id,
        started_versions.service_version_id
    from started_versions
    union
    select
        touched_versions.service_id,
        touched_versions.service_version_id
    from touched_versions
),

version_records as (
    select records.*
    from versions
    cross join lateral (
        select service_event_records.*
        from service_event_records
        where
            service_event_records.service_id = versions.service_id
            and service_event_records.service_version_id = versions.service_version_id
        offset 0 -- noqa: AM09
    ) as records
),

final as (
    select
        version_records.service_id,
        version_records.service_version_id,
        min(version_records.create_at) filter (
            where is_deployment_start(version_records.event_info)
        ) over (
            partition by version_records.service_id, version_records.service_version_id
        ) as attempt_start,
        version_records.create_at as occur_time,
        version_records.update_at as last_time,
        -- v1's spelling (normal, abnormal, warning): the rules file names event types so
        lower(version_records.event_type) as event_type,
        version_records.event_info,
        md5(version_records.event_info)::uuid as event_info_md5,
        version_records.event_count as occurrences
    from version_records
)

select * from final
