-- Move one chunk of the stage into service_events when the window held no events as the load
-- began: every staged row is new unless it repeats one of this same load, so there is nothing to
-- probe. A repeat (in this chunk or an earlier one), or two texts with one md5, raises
-- unique_violation, and the loader redoes the chunk with insert_new_events_on_conflict.sql,
-- which folds repeats, counts them and compares texts.
insert into service_events (service_id, occur_time, event_type, event_info, load_batch_id)
select
    stage.service_id,
    stage.occur_time,
    stage.event_type,
    stage.event_info,
    %(batch_id)s
from event_stage as stage
