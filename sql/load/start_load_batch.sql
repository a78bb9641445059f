-- Open the audit row of one load; committed on its own so a failed load still leaves a trace.
-- loader_pid: the backend that will hold the load's transaction (see abandon_dead_loads.sql).
-- generation: v1 (service_events) or v2 (service_event_records), migration 0012.
insert into load_batches (
    run_id, partition_key, window_start_ms, window_end_ms, loader_pid, generation
)
values (
    %(run_id)s,
    %(partition_key)s,
    %(window_start_ms)s,
    %(window_end_ms)s,
    %(loader_pid)s,
    %(generation)s
)
returning batch_id
