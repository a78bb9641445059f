-- Insert or refresh one new-version service of the /v2 listing with its generation and v2
-- fields (owner: the listing's user_name); first_seen_at is kept from the first sighting.
insert into services (
    service_id,
    service_name,
    status,
    owner,
    generation,
    version,
    version_count,
    service_type,
    created_at,
    updated_at,
    raw,
    first_seen_at,
    last_seen_at
)
values (
    %(service_id)s,
    %(service_name)s,
    %(status)s,
    %(owner)s,
    'v2',
    %(version)s,
    %(version_count)s,
    %(service_type)s,
    to_timestamp(%(create_at_ms)s::bigint / 1000.0),
    to_timestamp(%(update_at_ms)s::bigint / 1000.0),
    %(raw)s::jsonb,
    now(),
    now()
)
on conflict (service_id) do update set
    service_name = excluded.service_name,
    status = excluded.status,
    owner = excluded.owner,
    generation = excluded.generation,
    version = excluded.version,
    version_count = excluded.version_count,
    service_type = excluded.service_type,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    raw = excluded.raw,
    last_seen_at = now()
