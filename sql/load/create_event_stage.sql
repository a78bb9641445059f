-- Session-local staging table that one load COPYs into before the insert into service_events.
-- A first load of a window inserts it as it is, and service_events computes each row's key hash
-- once. A load that probes stored keys adds the hash here first (add_stage_key_hash.sql).
create temporary table if not exists event_stage (
    service_id text not null,
    occur_time bigint not null,
    event_type text not null,
    event_info text not null
) on commit drop
