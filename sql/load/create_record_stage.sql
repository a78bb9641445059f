-- Session-local stage of the v2 records one load fetched, before they are merged into
-- service_event_records (upsert_event_records.sql).
create temporary table if not exists record_stage (
    record_id text not null,
    service_id text not null,
    service_version_id text not null,
    event_type text not null,
    event_info text not null,
    event_info_cn text,
    event_count bigint not null,
    create_at bigint not null,
    update_at bigint not null
) on commit drop
