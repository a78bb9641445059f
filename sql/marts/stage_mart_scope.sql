-- For each service in scope (mart_services), the event range whose attempts its days can change.
-- Boundaries: the texts that start or end an attempt (is_deployment_boundary, migration 0010), the
-- predicate of the partial index service_events_deployment_boundary_idx; the last one before a
-- time is last_deployment_boundary (migration 0011).
-- lo: the last boundary before its first day is an open start (that attempt may end in the days)
-- or the first day's start. The attempts starting in [lo_ms, end_ms) are rebuilt.
-- hi (exclusive): the last day's end, or past the first boundary after it when the last attempt
-- is still open (null: to the end of the data).
-- Each boundary is one probe of the partial boundary index per service, however long the history.
create temporary table mart_scope on commit drop as
with final as (
    select
        services.service_id,
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
)

select * from final
