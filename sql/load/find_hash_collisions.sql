-- Staged events whose key hash matches a stored row with a different text (an md5 collision).
select
    stage.service_id,
    stage.occur_time,
    stage.event_type,
    stage.event_info
from event_stage as stage
inner join service_events as stored
    on
        stage.service_id = stored.service_id
        and stage.occur_time = stored.occur_time
        and stored.event_info_md5 = md5(stage.event_info)::uuid
where stored.event_info <> stage.event_info
