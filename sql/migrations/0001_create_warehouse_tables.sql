-- Raw layer: the service dimension, the service_events fact table, load audit and quarantine.

create table if not exists load_batches (
    batch_id bigint generated always as identity primary key,
    run_id text,
    partition_key text,
    window_start_ms bigint not null,
    window_end_ms bigint not null,
    status text not null default 'running'
        check (status in ('running', 'succeeded', 'failed')),
    services integer not null default 0,
    services_missing integer not null default 0,
    pages integer not null default 0,
    requests integer not null default 0,
    retries integer not null default 0,
    fetched bigint not null default 0,
    out_of_window bigint not null default 0,
    inserted bigint not null default 0,
    already_present bigint not null default 0,
    quarantined bigint not null default 0,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    error text
);

comment on table load_batches is
    'One row per load of a window: what was fetched and what it changed. A failed batch leaves no rows.';

create table if not exists services (
    service_id text primary key,
    service_name text,
    status text,
    infer_type text,
    owner text,
    publish_at timestamptz,
    first_seen_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    raw jsonb not null default '{}'::jsonb
);

comment on table services is 'Dimension: the inference services as the listing call last showed them.';

create table if not exists service_events (
    service_id text not null,
    occur_time bigint not null,
    occurred_at timestamptz not null
        generated always as (to_timestamp(occur_time / 1000.0)) stored,
    event_type text not null,
    event_info text not null,
    -- a btree on raw text fails above ~2.7 KB: the key uses a stored hash of the text instead
    event_info_md5 uuid not null generated always as (md5(event_info)::uuid) stored,
    load_batch_id bigint not null references load_batches (batch_id),
    loaded_at timestamptz not null default now(),
    constraint service_events_key unique (service_id, occur_time, event_info_md5)
);

comment on table service_events is
    'Fact: one row per (service_id, occur_time, event_info) as received from the events API.';
comment on column service_events.occur_time is 'Epoch milliseconds UTC, exactly as received.';
comment on column service_events.event_info_md5 is
    'md5 of event_info; the loader checks the text on every key match, so a collision is never merged.';

create index if not exists service_events_occurred_at_idx on service_events (occurred_at);

create table if not exists quarantined_events (
    quarantine_id bigint generated always as identity primary key,
    service_id text not null,
    window_start_ms bigint not null,
    window_end_ms bigint not null,
    reason text not null,
    raw_json text not null,
    raw_md5 uuid not null generated always as (md5(raw_json)::uuid) stored,
    load_batch_id bigint not null references load_batches (batch_id),
    quarantined_at timestamptz not null default now(),
    constraint quarantined_events_key unique (service_id, raw_md5, reason)
);

comment on table quarantined_events is
    'Records that failed validation, kept with the reason; never dropped silently.';
