-- Keep one malformed record with its reason; a rerun of the same window adds nothing.
insert into quarantined_events (
    service_id, window_start_ms, window_end_ms, reason, raw_json, load_batch_id
)
values (
    %(service_id)s,
    %(window_start_ms)s,
    %(window_end_ms)s,
    %(reason)s,
    %(raw_json)s,
    %(batch_id)s
)
on conflict on constraint quarantined_events_key do nothing
