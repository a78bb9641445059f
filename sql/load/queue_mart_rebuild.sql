-- Queue for the marts rebuild the (service, UTC day) pairs whose events this load inserted
-- (mart_rebuild_queue, migration 0009). Runs in the load's transaction, just before it commits,
-- so the pairs commit exactly with the events. Read through the key index (service_id,
-- occur_time, ...): the distinct services by a skip from one to the next (stored_service_ids,
-- migration 0010), then each one's rows of the window; OFFSET 0 keeps that a subquery run once
-- per service. Not the BRIN index of occurred_at: its ranges widen wherever a load fills free
-- space that a vacuum left in old pages, and a window's lookup then reads most of the table.
insert into mart_rebuild_queue (load_batch_id, service_id, event_date)
with changed as (
    select distinct
        service_ids.service_id,
        (to_timestamp(batch_events.occur_time / 1000.0) at time zone 'UTC')::date as event_date
    from stored_service_ids() as service_ids
    cross join lateral (
        select events.occur_time
        from service_events as events
        where
            events.service_id = service_ids.service_id
            and events.occur_time >= %(start_ms)s
            and events.occur_time < %(end_ms)s
            and events.load_batch_id = %(batch_id)s
        offset 0 -- noqa: AM09
    ) as batch_events
)

select
    %(batch_id)s as load_batch_id,
    changed.service_id,
    changed.event_date
from changed
