-- Queue for the marts rebuild the (service, UTC day) pairs whose events this load inserted
-- (mart_rebuild_queue, migration 0009). Runs in the load's transaction, just before it commits,
-- so the pairs commit exactly with the events; the window's rows are found by its time range.
insert into mart_rebuild_queue (load_batch_id, service_id, event_date)
select distinct
    events.load_batch_id,
    events.service_id,
    (events.occurred_at at time zone 'UTC')::date as event_date
from service_events as events
where
    events.occurred_at >= to_timestamp(%(start_ms)s / 1000.0)
    and events.occurred_at < to_timestamp(%(end_ms)s / 1000.0)
    and events.occur_time >= %(start_ms)s
    and events.occur_time < %(end_ms)s
    and events.load_batch_id = %(batch_id)s
