-- Backends holding the advisory lock of a day in [first_day, last_day], with the load they run.
select distinct
    locks.pid,
    batches.batch_id,
    batches.run_id,
    batches.partition_key
from pg_locks as locks
left join load_batches as batches
    on locks.pid = batches.loader_pid and batches.status = 'running'
where
    locks.locktype = 'advisory'
    -- advisory locks are per database: other databases of the server have their own loads
    and locks.database = (
        select databases.oid
        from pg_database as databases
        where databases.datname = current_database()
    )
    and locks.granted
    and locks.classid = %(lock_class)s::integer::oid
    and locks.objid::bigint between %(first_day)s and %(last_day)s
    and locks.objsubid = 2
    and locks.pid <> pg_backend_pid()
order by locks.pid
