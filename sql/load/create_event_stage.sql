-- Session-local staging table that one load COPYs into before the dedup insert.
-- The key's hash is computed here, once per row while the COPY streams, and reused by every step.
create temporary table if not exists event_stage (
    service_id text not null,
    occur_time bigint not null,
    event_type text not null,
    event_info text not null,
    event_info_md5 uuid not null generated always as (md5(event_info)::uuid) stored
) on commit drop
