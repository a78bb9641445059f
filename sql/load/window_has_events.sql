-- Whether service_events holds any event of the load's window. Asked once the window's day locks
-- are held, so the answer stays true until the load commits: no other load writes these days.
select exists(
    select 1
    from service_events as events
    where
        events.occurred_at >= to_timestamp(%(start_ms)s / 1000.0)
        and events.occurred_at < to_timestamp(%(end_ms)s / 1000.0)
        and events.occur_time >= %(start_ms)s
        and events.occur_time < %(end_ms)s
) as window_has_events
