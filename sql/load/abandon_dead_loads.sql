-- Under the advisory locks of a window's days: loads of those days still marked `running` whose
-- backend is gone died with their process (their rows were rolled back); this load takes over.
update load_batches as batches set
    status = 'abandoned',
    finished_at = now(),
    error = 'its process died (backend ' || coalesce(batches.loader_pid::text, 'unknown')
    || ' gone); batch ' || %(batch_id)s::text || ' took over'
where
    batches.status = 'running'
    and batches.batch_id <> %(batch_id)s
    and batches.window_start_ms < %(window_end_ms)s
    and batches.window_end_ms > %(window_start_ms)s
    and not exists (
        select 1 from pg_stat_activity as activity
        where activity.pid = batches.loader_pid
    )
returning batches.batch_id
