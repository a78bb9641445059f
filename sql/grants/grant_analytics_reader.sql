-- Read-only role for BI tools: usage on the analytics schema and select on its tables, nothing else.
-- Idempotent. Grant it to a login role: create role metabase login password '...' in role analytics_reader;
do $$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'analytics_reader') then
        create role analytics_reader nologin;
    end if;
end
$$;

grant usage on schema analytics to analytics_reader;
grant select on all tables in schema analytics to analytics_reader;
-- (views too: analytics.services, the services' names, owners, generations and statuses)
-- tables created later in the schema by the role running this script are readable too
alter default privileges in schema analytics grant select on tables to analytics_reader;
