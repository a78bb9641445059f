-- For each service in scope (mart_services), the event range whose attempts its days can change.
-- Boundaries (starts, successes, failures) of both rule families; the predicate is the one of the
-- index service_events_deployment_boundary_idx (migration 0008), kept identical.
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
    left join lateral (
        select
            events.occur_time,
            events.event_info in ('start to deploy service', 'The service starts to deploy.')
                as is_start
        from service_events as events
        where
            events.service_id = services.service_id
            and events.occur_time < services.first_ms
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
    ) as before_first on true
    left join lateral (
        select
            events.occur_time,
            events.event_info in ('start to deploy service', 'The service starts to deploy.')
                as is_start
        from service_events as events
        where
            events.service_id = services.service_id
            and events.occur_time < services.end_ms
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
    ) as before_end on true
    left join lateral (
        select events.occur_time
        from service_events as events
        where
            events.service_id = services.service_id
            and events.occur_time >= services.end_ms
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
    ) as after_end on true
)

select * from final
