-- Drop the per-row foreign key check of service_events.load_batch_id (about a fifth of a bulk
-- insert's time): the loader commits the load_batches row before it writes any event, and batches
-- are never deleted, so the reference holds by construction (tests/integration check it).

alter table service_events drop constraint if exists service_events_load_batch_id_fkey;

comment on column service_events.load_batch_id is
    'load_batches.batch_id of the load that inserted the row (committed before the load writes).';
