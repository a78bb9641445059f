-- The services with events in the day, and for each the event range whose attempts the day can change.
-- Boundaries (starts, successes, failures) of both rule families; the predicate is the one of the
-- index service_events_deployment_boundary_idx (migration 0008), kept identical.
-- lo: the last boundary before the day is an open start (that attempt may end today) or the day start.
-- hi (exclusive): the day end, or past the first boundary after it when the last attempt is still open.
create temporary table mart_scope on commit drop as
with day_services as (
    select distinct events.service_id
    from service_events as events
    where
        events.occurred_at >= %(day_start)s
        and events.occurred_at < %(day_end)s
),

before_day as (
    select
        day_services.service_id,
        boundary.occur_time,
        boundary.is_start
    from day_services
    left join lateral (
        select
            events.occur_time,
            events.event_info in ('start to deploy service', 'The service starts to deploy.')
                as is_start
        from service_events as events
        where
            events.service_id = day_services.service_id
            and events.occur_time < %(day_start_ms)s
            and (
                events.event_info = 'start to deploy service'
                or events.event_info = 'service is running'
                or events.event_info like 'deploy service failed: %%'
                or events.event_info like 'model (%%) build image failed: %%'
                or events.event_info like '[%%] prepare environment failed: %%'
                or events.event_info like '[%%] schedule resource failed: %%'
                or events.event_info like '[%%] pull image failed: %%'
                or events.event_info like '[%%] start model failed: %%'
                or events.event_info = 'The service starts to deploy.'
                or events.event_info like 'Service %% started.'
                or events.event_info like 'Service %% failed. Error: %%'
                or events.event_info like 'Service deployment timed out. Error: %%'
                or events.event_info like 'Failed to create model image %%. Error: %%'
                or events.event_info like 'Failed to start service %%. Error: %%'
                or events.event_info
                like 'Insufficient %%. The scheduling failed. Supplementary information: %%'
            )
        -- in one millisecond a terminal event closes the previous attempt before a start opens one
        order by events.occur_time desc, is_start desc
        limit 1
    ) as boundary on true
),

before_day_end as (
    select
        day_services.service_id,
        boundary.occur_time,
        boundary.is_start
    from day_services
    left join lateral (
        select
            events.occur_time,
            events.event_info in ('start to deploy service', 'The service starts to deploy.')
                as is_start
        from service_events as events
        where
            events.service_id = day_services.service_id
            and events.occur_time < %(day_end_ms)s
            and (
                events.event_info = 'start to deploy service'
                or events.event_info = 'service is running'
                or events.event_info like 'deploy service failed: %%'
                or events.event_info like 'model (%%) build image failed: %%'
                or events.event_info like '[%%] prepare environment failed: %%'
                or events.event_info like '[%%] schedule resource failed: %%'
                or events.event_info like '[%%] pull image failed: %%'
                or events.event_info like '[%%] start model failed: %%'
                or events.event_info = 'The service starts to deploy.'
                or events.event_info like 'Service %% started.'
                or events.event_info like 'Service %% failed. Error: %%'
                or events.event_info like 'Service deployment timed out. Error: %%'
                or events.event_info like 'Failed to create model image %%. Error: %%'
                or events.event_info like 'Failed to start service %%. Error: %%'
                or events.event_info
                like 'Insufficient %%. The scheduling failed. Supplementary information: %%'
            )
        order by events.occur_time desc, is_start desc
        limit 1
    ) as boundary on true
),

after_day as (
    select
        day_services.service_id,
        boundary.occur_time
    from day_services
    left join lateral (
        select events.occur_time
        from service_events as events
        where
            events.service_id = day_services.service_id
            and events.occur_time >= %(day_end_ms)s
            and (
                events.event_info = 'start to deploy service'
                or events.event_info = 'service is running'
                or events.event_info like 'deploy service failed: %%'
                or events.event_info like 'model (%%) build image failed: %%'
                or events.event_info like '[%%] prepare environment failed: %%'
                or events.event_info like '[%%] schedule resource failed: %%'
                or events.event_info like '[%%] pull image failed: %%'
                or events.event_info like '[%%] start model failed: %%'
                or events.event_info = 'The service starts to deploy.'
                or events.event_info like 'Service %% started.'
                or events.event_info like 'Service %% failed. Error: %%'
                or events.event_info like 'Service deployment timed out. Error: %%'
                or events.event_info like 'Failed to create model image %%. Error: %%'
                or events.event_info like 'Failed to start service %%. Error: %%'
                or events.event_info
                like 'Insufficient %%. The scheduling failed. Supplementary information: %%'
            )
        order by events.occur_time
        limit 1
    ) as boundary on true
),

final as (
    select
        day_services.service_id,
        case
            when before_day.is_start then before_day.occur_time
            else %(day_start_ms)s::bigint
        end as lo_ms,
        case
            when not coalesce(before_day_end.is_start, false) then %(day_end_ms)s::bigint
            -- open at the day end: read up to and including the next boundary (or to the end)
            else after_day.occur_time + 1
        end as hi_ms
    from day_services
    inner join before_day on day_services.service_id = before_day.service_id
    inner join before_day_end on day_services.service_id = before_day_end.service_id
    inner join after_day on day_services.service_id = after_day.service_id
)

select * from final
