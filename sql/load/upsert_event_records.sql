-- Merge the staged v2 records into service_event_records: insert the new ones; move a known
-- one's event_count and update_at forward only and keep its earliest create_at; keep one that
-- came back smaller (a count or update_at below the stored one) as stored. Every insert and
-- forward move writes its before/after into service_event_record_changes, and queues the
-- (service, create_at day) of the record, and its stored create_at day if that moved, for the marts
-- rebuild. Returns the load's counts.
with staged as (
    select distinct on (record_id) *
    from record_stage
    order by record_id asc, event_count desc, update_at desc
),

classified as (
    select
        staged.*,
        stored.event_count as count_before,
        stored.update_at as update_at_before,
        stored.create_at as create_at_before,
        case
            when stored.record_id is null then 'new'
            when
                staged.event_count < stored.event_count
                or staged.update_at < stored.update_at
                then 'regressed'
            when
                staged.event_count > stored.event_count
                or staged.update_at > stored.update_at
                or staged.create_at < stored.create_at
                then 'changed'
            else 'unchanged'
        end as outcome
    from staged
    left join service_event_records as stored on staged.record_id = stored.record_id
),

moved as (
    select * from classified
    where outcome in ('new', 'changed')
),

upserted as (
    insert into service_event_records as records (
        record_id,
        service_id,
        service_version_id,
        event_type,
        event_info,
        event_info_cn,
        event_count,
        create_at,
        update_at,
        first_load_batch_id,
        last_load_batch_id
    )
    select
        moved.record_id,
        moved.service_id,
        moved.service_version_id,
        moved.event_type,
        moved.event_info,
        moved.event_info_cn,
        moved.event_count,
        moved.create_at,
        moved.update_at,
        %(batch_id)s as first_load_batch_id,
        %(batch_id)s as last_load_batch_id
    from moved
    on conflict (record_id) do update
        set
            event_count = greatest(records.event_count, excluded.event_count),
            update_at = greatest(records.update_at, excluded.update_at),
            create_at = least(records.create_at, excluded.create_at),
            last_load_batch_id = excluded.last_load_batch_id,
            last_loaded_at = now()
    returning records.record_id
),

changes as (
    insert into service_event_record_changes (
        record_id, load_batch_id, count_before, count_after, update_at_before, update_at_after
    )
    select
        moved.record_id,
        %(batch_id)s as load_batch_id,
        moved.count_before,
        greatest(moved.event_count, moved.count_before) as count_after,
        moved.update_at_before,
        greatest(moved.update_at, moved.update_at_before) as update_at_after
    from moved
    on conflict (record_id, load_batch_id) do nothing
    returning record_id
),

-- no returning: the loader may insert into the marts queue, not read it
queued as (
    insert into mart_rebuild_queue (load_batch_id, service_id, event_date)
    select distinct
        %(batch_id)s::bigint as load_batch_id,
        moved.service_id,
        (to_timestamp(record_days.create_at / 1000.0) at time zone 'UTC')::date as event_date
    from moved
    -- a create_at that moved earlier leaves its old day as well: both days are rebuilt
    cross join
        lateral (
            values (moved.create_at), (moved.create_at_before)
        ) as record_days (create_at)
    where record_days.create_at is not null
    on conflict do nothing
)

select
    count(*) filter (where classified.outcome = 'new') as records_new,
    count(*) filter (where classified.outcome = 'changed') as records_changed,
    count(*) filter (where classified.outcome = 'unchanged') as records_unchanged,
    count(*) filter (where classified.outcome = 'regressed') as records_regressed,
    (select count(*) from upserted) as upserted,
    (select count(*) from changes) as changes
from classified
