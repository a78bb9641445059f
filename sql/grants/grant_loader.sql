-- The loader role: writes the raw layer (events, services, quarantine, load audit), nothing else.
-- Run as the schema owner after migrations; idempotent. Give it a password separately
-- (`alter role modelarts_loader login password '...'`): no secret lives in this file.
do $$
begin
    if not exists (select from pg_roles where rolname = 'modelarts_loader') then
        create role modelarts_loader nologin;
    end if;
    -- its TEMP stage table needs the database's temporary privilege
    execute format('grant connect, temporary on database %I to modelarts_loader', current_database());
end
$$;

grant usage on schema public to modelarts_loader;
revoke create on schema public from modelarts_loader;

grant select, insert on service_events, quarantined_events to modelarts_loader;
-- v2 records are aggregates a reload moves forward; their history of changes (migration 0012)
grant select, insert, update on service_event_records to modelarts_loader;
grant select, insert on service_event_record_changes to modelarts_loader;
grant select, insert, update on load_batches, services to modelarts_loader;
-- the catch-up sensor records the days it gives up on (migration 0017)
grant select, insert on catchup_given_up_days to modelarts_loader;
-- the (service, day) pairs a load changed, for the marts rebuild (migration 0009)
grant insert on mart_rebuild_queue to modelarts_loader;
-- the pipeline checks on start that no migration is pending
grant select on schema_migrations to modelarts_loader;
