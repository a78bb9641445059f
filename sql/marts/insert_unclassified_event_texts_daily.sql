-- Count the scoped services' event texts outside the deployment vocabulary on their days, per day, service and text.
insert into analytics.unclassified_event_texts_daily (
    event_date, service_id, event_info_md5, event_type, event_info, events, first_occurred_at,
    last_occurred_at
)
with unknown_events as (
    select
        stage.*,
        (to_timestamp(stage.occur_time / 1000.0) at time zone 'UTC')::date as event_date
    from deployment_event_stage as stage
    inner join mart_scope as scope on stage.service_id = scope.service_id
    where
        stage.kind = 'unknown'
        and stage.occur_time >= scope.first_ms
        and stage.occur_time < scope.end_ms
),

final as (
    select
        unknown_events.event_date,
        unknown_events.service_id,
        unknown_events.event_info_md5,
        unknown_events.event_type,
        min(unknown_events.event_info) as event_info,
        count(*) as events,
        to_timestamp(min(unknown_events.occur_time) / 1000.0) as first_occurred_at,
        to_timestamp(max(unknown_events.occur_time) / 1000.0) as last_occurred_at
    from unknown_events
    group by
        unknown_events.event_date,
        unknown_events.service_id,
        unknown_events.event_info_md5,
        unknown_events.event_type
)

select * from final
