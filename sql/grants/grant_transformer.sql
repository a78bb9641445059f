-- The transformer role: reads the raw layer, rebuilds the analytics marts; writes nothing raw.
-- Run as the schema owner after migrations; idempotent. Password set separately, never here.
do $$
begin
    if not exists (select from pg_roles where rolname = 'modelarts_transformer') then
        create role modelarts_transformer nologin;
    end if;
    -- the mart rebuild stages the day's scope in temporary tables
    execute format(
        'grant connect, temporary on database %I to modelarts_transformer', current_database()
    );
end
$$;

grant usage on schema public, analytics to modelarts_transformer;
revoke create on schema public, analytics from modelarts_transformer;

-- load_batches: the deployment report (an asset run as this role) shows the loads' freshness
grant select on service_events, services, load_batches, schema_migrations to modelarts_transformer;
-- and which days are lost or given up (day_load_states, migration 0017)
grant select on catchup_given_up_days to modelarts_transformer;
-- the v2 event records and their history (migration 0012)
grant select on service_event_records, service_event_record_changes to modelarts_transformer;
-- the marts rebuild consumes what the loader queued (migration 0009)
grant select, delete on mart_rebuild_queue to modelarts_transformer;
grant select, insert, update, delete on all tables in schema analytics to modelarts_transformer;
alter default privileges in schema analytics
grant select, insert, update, delete on tables to modelarts_transformer;
-- analytics.services (migration 0014) is a view over the loader's services table: read only
revoke insert, update, delete, truncate on analytics.services from modelarts_transformer;
