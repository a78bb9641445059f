-- Fallback of insert_new_events.sql after a unique_violation: the same pass with ON CONFLICT DO
-- NOTHING. When fewer rows are inserted than were absent, the loader compares every staged text
-- with the stored one (find_hash_collisions.sql) before counting the rest as already present.
with staged as (
    select distinct on (stage.service_id, stage.occur_time, stage.event_info_md5, stage.event_info)
        stage.service_id,
        stage.occur_time,
        stage.event_type,
        stage.event_info,
        stage.event_info_md5
    from event_stage as stage
    order by
        stage.service_id, stage.occur_time, stage.event_info_md5, stage.event_info, stage.event_type
),

probed as materialized (
    select
        staged.service_id,
        staged.occur_time,
        staged.event_type,
        staged.event_info,
        stored.event_info as stored_event_info,
        stored.load_batch_id as stored_batch_id
    from staged
    -- a lateral probe with limit 1 stays an index lookup per staged key, whatever the table size
    left join lateral (
        select existing.event_info, existing.load_batch_id
        from service_events as existing
        where
            existing.service_id = staged.service_id
            and existing.occur_time = staged.occur_time
            and existing.event_info_md5 = staged.event_info_md5
        limit 1
    ) as stored on true
),

inserted as (
    insert into service_events (service_id, occur_time, event_type, event_info, load_batch_id)
    select
        probed.service_id,
        probed.occur_time,
        probed.event_type,
        probed.event_info,
        %(batch_id)s
    from probed
    where probed.stored_event_info is null
    on conflict on constraint service_events_key do nothing
    returning 1
)

select
    count(*) as staged_distinct,
    count(*) filter (
        where probed.stored_event_info = probed.event_info
        and probed.stored_batch_id = %(batch_id)s
    ) as repeated_in_load,
    count(*) filter (
        where probed.stored_event_info = probed.event_info
        and probed.stored_batch_id <> %(batch_id)s
    ) as already_present,
    count(*) filter (where probed.stored_event_info <> probed.event_info) as collisions,
    count(*) filter (where probed.stored_event_info is null) as absent,
    (select count(*) from inserted) as inserted
from probed
