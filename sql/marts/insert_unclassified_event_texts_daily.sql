-- Count the day's event texts outside the deployment vocabulary, per service and text.
insert into analytics.unclassified_event_texts_daily (
    event_date, service_id, event_info_md5, event_type, event_info, events, first_occurred_at,
    last_occurred_at
)
with unknown_events as (
    select stage.*
    from deployment_event_stage as stage
    where
        stage.kind = 'unknown'
        and stage.occur_time >= %(day_start_ms)s
        and stage.occur_time < %(day_end_ms)s
),

final as (
    select
        %(day)s::date as event_date,
        unknown_events.service_id,
        unknown_events.event_info_md5,
        unknown_events.event_type,
        min(unknown_events.event_info) as event_info,
        count(*) as events,
        to_timestamp(min(unknown_events.occur_time) / 1000.0) as first_occurred_at,
        to_timestamp(max(unknown_events.occur_time) / 1000.0) as last_occurred_at
    from unknown_events
    group by
        unknown_events.service_id, unknown_events.event_info_md5, unknown_events.event_type
)

select * from final
