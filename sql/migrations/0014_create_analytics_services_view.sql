-- The service dimension for BI: analytics.services, a view over services (id, name, owner, generation, status).
-- A view, not a copy: it shows the listing as the loader last stored it, with no rebuild to wait
-- for. It reads services with its owner's rights, so analytics_reader (select on the analytics
-- schema) sees these five columns and nothing else of the raw layer.
create or replace view analytics.services as
select
    service_id,
    service_name as name,
    owner,
    generation,
    status
from public.services;

-- A one-table view is updatable through its owner's rights: only select on it, for every role
-- (the transformer's grant on all of analytics, and its default privileges, would give it
-- insert, update and delete here, i.e. on the loader's services table).
revoke insert, update, delete, truncate on analytics.services from public;
do $$
begin
    if exists (select from pg_catalog.pg_roles where rolname = 'modelarts_transformer') then
        revoke insert, update, delete, truncate on analytics.services from modelarts_transformer;
    end if;
end
$$;

comment on view analytics.services is
'Dimension: each inference service as the listing call last showed it (one row per service_id); '
'join the marts on service_id to show names.';
comment on column analytics.services.service_id is 'The service''s id (uuid), the marts'' key.';
comment on column analytics.services.name is 'The service''s name in the console.';
comment on column analytics.services.owner is
'The listing''s owner, as the API gives it (null when the listing names none).';
comment on column analytics.services.generation is
'v1: an old-version service (/v1 calls); v2: a new-version service (/v2).';
comment on column analytics.services.status is
'The service''s status when last listed, as the API spells it (v1 lower case, v2 upper case).';
