-- The current login's project roles, createrole and ownership of the warehouse schema, for error advice.
with login as (
    select
        roles.oid,
        roles.rolsuper as is_superuser,
        roles.rolcreaterole as can_create_roles
    from pg_catalog.pg_roles as roles
    where roles.rolname = current_user
),

project_roles as (
    select coalesce(array_agg(roles.rolname order by roles.rolname), '{}') as member_of
    from pg_catalog.pg_roles as roles
    cross join login
    where
        roles.rolname = any(%(project_roles)s)
        and pg_catalog.pg_has_role(login.oid, roles.oid, 'member')
),

schema_owner as (
    select tables.relowner as owner_oid
    from pg_catalog.pg_class as tables
    where tables.oid = to_regclass('schema_migrations')
)

select
    project_roles.member_of,
    login.is_superuser,
    login.can_create_roles,
    coalesce(
        login.is_superuser
        or pg_catalog.pg_has_role(login.oid, schema_owner.owner_oid, 'member'),
        false
    ) as owns_schema
from login
cross join project_roles
left join schema_owner on true
