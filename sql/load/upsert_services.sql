-- Insert or refresh one service of the listing; first_seen_at is kept from the first sighting.
insert into services (
    service_id,
    service_name,
    status,
    infer_type,
    owner,
    publish_at,
    raw,
    first_seen_at,
    last_seen_at
)
values (
    %(service_id)s,
    %(service_name)s,
    %(status)s,
    %(infer_type)s,
    %(owner)s,
    to_timestamp(%(publish_at_ms)s::bigint / 1000.0),
    %(raw)s::jsonb,
    now(),
    now()
)
on conflict (service_id) do update set
    service_name = excluded.service_name,
    status = excluded.status,
    infer_type = excluded.infer_type,
    owner = excluded.owner,
    publish_at = excluded.publish_at,
    raw = excluded.raw,
    last_seen_at = now()
