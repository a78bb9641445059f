-- Which backend runs a load, so a load left `running` by a dead process can be told from a live
-- one: its backend is gone from pg_stat_activity (a killed client's connection closes, and the
-- server rolls its transaction back). Such a batch is shown `stale` by `modelarts-etl status`
-- and marked `abandoned` by the next load of its days, which takes them over.
alter table load_batches add column if not exists loader_pid integer;

comment on column load_batches.loader_pid is
    'pg_backend_pid() of the connection holding the load''s transaction; null before migration 0006';

alter table load_batches drop constraint if exists load_batches_status_check;
alter table load_batches add constraint load_batches_status_check
    check (status in ('running', 'succeeded', 'failed', 'abandoned'));
