-- The second API generation (new-version inference services, /v2): the service dimension learns
-- each service's generation and its v2 fields, and v2 event records (aggregates: one record per
-- repeated event of a service version, with a count, a first and a last occurrence) get a fact
-- table of their own beside service_events, with the history of what each load saw them become.
-- v2 records are never expanded into service_events rows.

alter table services
add column if not exists generation text not null default 'v1',
add column if not exists version text,
add column if not exists version_count integer,
add column if not exists service_type text,
add column if not exists created_at timestamptz,
add column if not exists updated_at timestamptz;

alter table services drop constraint if exists services_generation_check;
alter table services add constraint services_generation_check
check (generation in ('v1', 'v2'));

comment on column services.generation is
'v1: an old-version service, listed and logged by /v1 calls; v2: a new-version service (/v2).';
comment on column services.version is 'v2 only: the version the service runs now.';
comment on column services.version_count is 'v2 only: how many versions the service has had.';
comment on column services.service_type is 'v2 only: the listing''s type (e.g. REALTIME).';
comment on column services.created_at is 'v2 only: the listing''s create_at.';
comment on column services.updated_at is 'v2 only: the listing''s update_at.';

-- Which generation a load batch fetched: a window's v1 events and its v2 records are two loads,
-- each with its own audit row, so one can fail or be retried without the other.
alter table load_batches
add column if not exists generation text not null default 'v1',
add column if not exists records_new bigint not null default 0,
add column if not exists records_changed bigint not null default 0,
add column if not exists records_unchanged bigint not null default 0,
add column if not exists records_regressed bigint not null default 0;

alter table load_batches drop constraint if exists load_batches_generation_check;
alter table load_batches add constraint load_batches_generation_check
check (generation in ('v1', 'v2'));

comment on column load_batches.records_new is 'v2 loads: records seen for the first time.';
comment on column load_batches.records_changed is
'v2 loads: known records whose event_count or update_at moved forward.';
comment on column load_batches.records_unchanged is 'v2 loads: known records seen as stored.';
comment on column load_batches.records_regressed is
'v2 loads: records that came back with a smaller count or an older update_at; kept as stored.';

create table if not exists service_event_records (
    record_id text primary key,
    service_id text not null,
    service_version_id text not null,
    event_type text not null,
    event_info text not null,
    event_info_cn text,
    event_count bigint not null check (event_count >= 0),
    create_at bigint not null,
    update_at bigint not null,
    created_at timestamptz not null
    generated always as (to_timestamp(create_at / 1000.0)) stored,
    updated_at timestamptz not null
    generated always as (to_timestamp(update_at / 1000.0)) stored,
    first_load_batch_id bigint not null references load_batches (batch_id),
    last_load_batch_id bigint not null references load_batches (batch_id),
    first_loaded_at timestamptz not null default now(),
    last_loaded_at timestamptz not null default now()
);

comment on table service_event_records is
'Fact (v2): one row per event record of a new-version service, as the /v2 events call answers it. '
'A record aggregates the repeats of one event of one service version.';
comment on column service_event_records.event_count is
'How often the event happened so far; a reload only moves it forward.';
comment on column service_event_records.create_at is
'Epoch ms UTC of the first occurrence, exactly as received; a reload keeps the earliest.';
comment on column service_event_records.update_at is
'Epoch ms UTC of the last occurrence, exactly as received; a reload only moves it forward.';
comment on column service_event_records.event_info is 'The English text (the texts v1 emits).';
comment on column service_event_records.event_info_cn is 'The Chinese text, as received.';

-- the analytics read a version's lifecycle records in first-occurrence order
create index if not exists service_event_records_version_idx
on service_event_records (service_id, service_version_id, create_at);
create index if not exists service_event_records_created_at_idx
on service_event_records (created_at);

create table if not exists service_event_record_changes (
    record_id text not null references service_event_records (record_id),
    load_batch_id bigint not null references load_batches (batch_id),
    count_before bigint,
    count_after bigint not null,
    update_at_before bigint,
    update_at_after bigint not null,
    changed_at timestamptz not null default now(),
    primary key (record_id, load_batch_id)
);

comment on table service_event_record_changes is
'What each load saw a v2 record become: one row per record a load inserted or moved forward '
'(count_before null when the load saw it first). A crash loop reads as a count growing day by day.';
