-- Move staged events into service_events, skipping keys already present.
-- Sorted by key so concurrent loads of overlapping windows take row locks in one order (no deadlock).
with inserted as (
    insert into service_events (service_id, occur_time, event_type, event_info, load_batch_id)
    select
        stage.service_id,
        stage.occur_time,
        stage.event_type,
        stage.event_info,
        %(batch_id)s
    from event_stage as stage
    order by stage.service_id, stage.occur_time, md5(stage.event_info)
    on conflict on constraint service_events_key do nothing
    returning 1
)

select count(*) as inserted from inserted
