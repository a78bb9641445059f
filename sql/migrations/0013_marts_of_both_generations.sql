-- The marts over both API generations (issue 28): every mart gains the generation of the rows it
-- was built from (v1: service_events; v2: service_event_records, migration 0012), the rule
-- coverage is kept per day and generation, and the v2 records get the indexes and lookups the
-- incremental rebuild reads them by (one probe or one key range per service or version, as
-- migrations 0010 and 0011 for v1). The rebuild queue (migration 0009) is unchanged: a v2 load
-- queues (service, UTC day of create_at) as a v1 load queues (service, day of its events); the
-- rebuild tells a queued service's generation from the fact table that holds it.
-- noqa: disable=RF01

-- Marts: the generation column ---------------------------------------------------------------------

alter table analytics.deployment_attempts
add column if not exists generation text not null default 'v1';
alter table analytics.deployment_phases
add column if not exists generation text not null default 'v1';
alter table analytics.deployment_outcomes_daily
add column if not exists generation text not null default 'v1';
alter table analytics.deployment_phase_durations_daily
add column if not exists generation text not null default 'v1';
alter table analytics.deployment_failure_causes_daily
add column if not exists generation text not null default 'v1';
alter table analytics.unclassified_event_texts_daily
add column if not exists generation text not null default 'v1';
alter table analytics.event_text_coverage_daily
add column if not exists generation text not null default 'v1';

alter table analytics.deployment_attempts
add constraint deployment_attempts_generation_check check (generation in ('v1', 'v2'));
alter table analytics.deployment_phases
add constraint deployment_phases_generation_check check (generation in ('v1', 'v2'));
alter table analytics.deployment_outcomes_daily
add constraint deployment_outcomes_daily_generation_check check (generation in ('v1', 'v2'));
alter table analytics.deployment_phase_durations_daily
add constraint deployment_phase_durations_daily_generation_check
check (generation in ('v1', 'v2'));
alter table analytics.deployment_failure_causes_daily
add constraint deployment_failure_causes_daily_generation_check
check (generation in ('v1', 'v2'));
alter table analytics.unclassified_event_texts_daily
add constraint unclassified_event_texts_daily_generation_check
check (generation in ('v1', 'v2'));
alter table analytics.event_text_coverage_daily
add constraint event_text_coverage_daily_generation_check check (generation in ('v1', 'v2'));

-- A service belongs to one generation (a migrated service gets a new id), so the keys that name a
-- service stay as they are; the coverage, a figure per day of all services, becomes one row per
-- day and generation.
alter table analytics.event_text_coverage_daily
drop constraint event_text_coverage_daily_pkey;
alter table analytics.event_text_coverage_daily
add constraint event_text_coverage_daily_pkey primary key (event_date, generation);

-- dashboards filter or group a range of days by generation
create index if not exists deployment_attempts_generation_idx
on analytics.deployment_attempts (generation, attempt_date);

comment on column analytics.deployment_attempts.generation is
'v1: built from service_events (an old-version service: an attempt runs from a deployment start '
'to the next); v2: built from service_event_records (a new-version service: an attempt is a '
'service version, from its start record''s create_at).';
comment on column analytics.deployment_phases.generation is
'v1 or v2: the generation of the attempt (deployment_attempts.generation).';
comment on column analytics.deployment_outcomes_daily.generation is
'v1 or v2: the generation of the service''s attempts (deployment_attempts.generation).';
comment on column analytics.deployment_phase_durations_daily.generation is
'v1 or v2: the generation of the service''s attempts (deployment_attempts.generation).';
comment on column analytics.deployment_failure_causes_daily.generation is
'v1 or v2: the generation of the service''s attempts (deployment_attempts.generation).';
comment on column analytics.unclassified_event_texts_daily.generation is
'v1: counted from service_events; v2: from service_event_records (a record counts its '
'event_count occurrences on the UTC day of its create_at, its first occurrence).';
comment on column analytics.event_text_coverage_daily.generation is
'v1: the events of service_events; v2: the records of service_event_records, each weighing its '
'event_count on the day of its create_at. With event_date the key: a day has a row per '
'generation; sum them for the day''s figure.';
comment on column analytics.deployment_attempts.attempt_start is
'Epoch ms UTC of the attempt''s start (v1: the start event''s occur_time; v2: the create_at of '
'the start record of the service version); with service_id the key.';
comment on column analytics.deployment_attempts.events is
'Deployment events of the attempt up to its terminal event (runtime events excluded); a v2 '
'record counts its event_count.';
comment on column analytics.unclassified_event_texts_daily.events is
'Occurrences of the text that day (a v2 record: its event_count, on its create_at day).';

-- v2 records: how the rebuild reads them -----------------------------------------------------------

-- a service's records of a time range (by first occurrence): the days a rebuild covers
create index if not exists service_event_records_service_created_idx
on service_event_records (service_id, create_at);

-- the start records by time: the version open before a day, the next one after, those between
-- (with their version: read from the index alone)
create index if not exists service_event_records_start_idx
on service_event_records (service_id, create_at) include (service_version_id)
where is_deployment_start(event_info);

-- the start record of one version: one probe, however many versions the service has had. Led
-- by the version, so that no range of a service's starts by time is read through it.
create index if not exists service_event_records_version_start_idx
on service_event_records (service_version_id, service_id, create_at)
where is_deployment_start(event_info);

-- The distinct services of service_event_records, one probe of its (service_id, ...) index per
-- service: a skip from one to the next (stored_service_ids of migration 0010 for v1).
create or replace function stored_record_service_ids() returns table (service_id text)
language sql stable parallel safe
begin atomic
    with recursive service_ids as (
        (
            select records.service_id
            from service_event_records as records
            order by records.service_id
            limit 1
        )

        union all

        select next_id.service_id
        from service_ids
        cross join lateral (
            select records.service_id
            from service_event_records as records
            where records.service_id > service_ids.service_id
            order by records.service_id
            limit 1
        ) as next_id
    )

    select service_ids.service_id from service_ids;
end;

-- The create_at of the service's last version start before before_ms (no row: none), one
-- backward probe of service_event_records_start_idx. Set-returning, as last_deployment_boundary
-- (migration 0011): the planner inlines it into the statement that joins it laterally.
create or replace function last_version_start(service_id text, before_ms bigint)
returns table (create_at bigint)
language sql stable parallel safe
begin atomic
    select records.create_at
    from service_event_records as records
    where
        records.service_id = last_version_start.service_id
        and records.create_at < last_version_start.before_ms
        and is_deployment_start(records.event_info)
    order by records.create_at desc
    limit 1;
end;

-- The create_at of the service's first version start at or after from_ms (no row: none).
create or replace function next_version_start(service_id text, from_ms bigint)
returns table (create_at bigint)
language sql stable parallel safe
begin atomic
    select records.create_at
    from service_event_records as records
    where
        records.service_id = next_version_start.service_id
        and records.create_at >= next_version_start.from_ms
        and is_deployment_start(records.event_info)
    order by records.create_at
    limit 1;
end;
