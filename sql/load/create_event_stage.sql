-- Session-local staging table that one load COPYs into before the dedup insert.
create temporary table if not exists event_stage (
    service_id text not null,
    occur_time bigint not null,
    event_type text not null,
    event_info text not null
) on commit drop
