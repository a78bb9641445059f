-- The synthetic history's v2 twin (plan tests, benchmarks): the events of the services svc-* as
-- the v2 records of services rec-* (each deployment start opens a version; the repeats of a text
-- in a version are one record: count, first and last occurrence), inserted or moved forward.
-- Reads all of service_events: for building test data, not for a pipeline.
insert into service_event_records (
    record_id, service_id, service_version_id, event_type, event_info, event_info_cn,
    event_count, create_at, update_at, first_load_batch_id, last_load_batch_id
)
with versioned as (
    select
        events.service_id,
        events.occur_time,
        events.event_type,
        events.event_info,
        max(events.occur_time) filter (where is_deployment_start(events.event_info)) over (
            partition by events.service_id order by events.occur_time
        ) as version_start
    from service_events as events
    where events.service_id like 'svc-%%'
),

final as (
    select
        md5(
            versioned.service_id || '/' || coalesce(versioned.version_start, -1) || '/'
            || versioned.event_info
        ) as record_id,
        'rec-' || substr(versioned.service_id, 5) as service_id,
        md5(versioned.service_id || '/' || coalesce(versioned.version_start, -1))
            as service_version_id,
        upper(min(versioned.event_type)) as event_type,
        versioned.event_info,
        count(*) as event_count,
        min(versioned.occur_time) as create_at,
        max(versioned.occur_time) as update_at
    from versioned
    group by versioned.service_id, versioned.version_start, versioned.event_info
)

select
    final.record_id,
    final.service_id,
    final.service_version_id,
    final.event_type,
    final.event_info,
    '事件' as event_info_cn,
    final.event_count,
    final.create_at,
    final.update_at,
    %(batch_id)s as first_load_batch_id,
    %(batch_id)s as last_load_batch_id
from final
on conflict (record_id) do update set
    event_count = excluded.event_count,
    update_at = excluded.update_at,
    last_load_batch_id = excluded.last_load_batch_id
where service_event_records.event_count <> excluded.event_count
