-- The (service, UTC day) pairs whose events a load changed, written by the loader in the
-- transaction of its inserts and consumed by the marts rebuild in the transaction that rebuilds
-- them: whatever command loaded the events (a lookback, a backfill, a rerun, an overlapping
-- run), the marts of those days follow. A row per load batch, never merged with another load's:
-- a rebuild deletes only the rows it read, so a load that commits during a rebuild keeps its rows
-- for the next one.
create table if not exists mart_rebuild_queue (
    load_batch_id bigint not null,
    service_id text not null,
    event_date date not null,
    queued_at timestamptz not null default now(),
    constraint mart_rebuild_queue_pkey primary key (event_date, service_id, load_batch_id)
);

comment on table mart_rebuild_queue is
    'Marts to rebuild: (service, UTC day) pairs whose events a load inserted, until a rebuild consumes them.';
comment on column mart_rebuild_queue.load_batch_id is 'load_batches.batch_id of the load that changed the events.';
comment on column mart_rebuild_queue.event_date is 'UTC day of the changed events.';
