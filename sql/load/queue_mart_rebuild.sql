-- Queue for the marts rebuild the (service, UTC day) pairs whose events this load inserted
-- (mart_rebuild_queue, migration 0009). Runs in the load's transaction, just before it commits,
-- so the pairs commit exactly with the events. The batch's rows all lie in its window; they are
-- found through the BRIN index of occurred_at (a condition on occur_time would let the planner
-- skip-scan the key index service by service instead: 0.15 s against 0.02-0.05 s to read a
-- 30 k-event day on a year of history, bench_marts.py).
insert into mart_rebuild_queue (load_batch_id, service_id, event_date)
select distinct
    events.load_batch_id,
    events.service_id,
    (events.occurred_at at time zone 'UTC')::date as event_date
from service_events as events
where
    events.occurred_at >= to_timestamp(%(start_ms)s / 1000.0)
    and events.occurred_at < to_timestamp(%(end_ms)s / 1000.0)
    and events.load_batch_id = %(batch_id)s
