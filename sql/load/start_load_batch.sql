-- Open the audit row of one load; committed on its own so a failed load still leaves a trace.
insert into load_batches (run_id, partition_key, window_start_ms, window_end_ms)
values (%(run_id)s, %(partition_key)s, %(window_start_ms)s, %(window_end_ms)s)
returning batch_id
