-- Open the audit row of one load; committed on its own so a failed load still leaves a trace.
-- loader_pid: the backend that will hold the load's transaction (see abandon_dead_loads.sql).
insert into load_batches (run_id, partition_key, window_start_ms, window_end_ms, loader_pid)
values (%(run_id)s, %(partition_key)s, %(window_start_ms)s, %(window_end_ms)s, %(loader_pid)s)
returning batch_id
