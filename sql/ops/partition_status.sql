-- Per UTC day of a range: the latest load of the day and what service_events holds for it, then
-- the latest v2 load of the day and the v2 records created on it (service_event_records).
-- A load still `running` whose backend is gone died with its process: shown as `stale` (the
-- next load of the day marks it `abandoned` and takes over). state: loaded, not loaded, or
-- unrecoverable (never loaded, and wholly beyond the API's retention horizon: migration 0017).
with latest_load as (
    select distinct on (batches.partition_key)
        batches.partition_key,
        case
            when
                batches.status = 'running'
                and not exists (
                    select 1 from pg_stat_activity as activity
                    where activity.pid = batches.loader_pid
                )
                then 'stale'
            else batches.status
        end as status,
        batches.run_id,
        batches.fetched,
        batches.inserted,
        batches.already_present,
        batches.quarantined,
        batches.throttled,
        batches.finished_at
    from load_batches as batches
    where
        batches.partition_key between %(first_day)s::text and %(last_day)s::text
        and batches.generation = 'v1'
    order by batches.partition_key asc, batches.batch_id desc
),

latest_v2_load as (
    select distinct on (batches.partition_key)
        batches.partition_key,
        batches.status,
        batches.records_new,
        batches.records_changed
    from load_batches as batches
    where
        batches.partition_key between %(first_day)s::text and %(last_day)s::text
        and batches.generation = 'v2'
    order by batches.partition_key asc, batches.batch_id desc
),

stored_records as (
    select
        (records.created_at at time zone 'UTC')::date as day,
        count(*) as records
    from service_event_records as records
    where
        records.created_at >= %(first_day)s::date::timestamp at time zone 'UTC'
        and records.created_at < (%(last_day)s::date + 1)::timestamp at time zone 'UTC'
    group by (records.created_at at time zone 'UTC')::date
),

final as (
    select
        days.day,
        states.state,
        latest_load.status as last_load_status,
        latest_load.finished_at as last_load_finished_at,
        latest_load.run_id as last_run_id,
        latest_load.fetched as last_fetched,
        latest_load.inserted as last_inserted,
        latest_load.already_present as last_already_present,
        latest_load.quarantined as last_quarantined,
        coalesce(stored.services, 0) as services,
        coalesce(stored.events, 0) as events,
        latest_load.throttled as last_throttled,
        latest_v2_load.status as v2_last_load_status,
        latest_v2_load.records_new as v2_last_records_new,
        latest_v2_load.records_changed as v2_last_records_changed,
        coalesce(stored_records.records, 0) as v2_records
    from days_of_range(%(first_day)s::date, %(last_day)s::date) as days
    inner join
        day_load_states(
            %(first_day)s::date, %(last_day)s::date, %(first_recoverable_day)s::date
        ) as states
        on days.day = states.day
    left join latest_load on latest_load.partition_key = days.day::text
    left join latest_v2_load on latest_v2_load.partition_key = days.day::text
    left join stored_records on days.day = stored_records.day
    left join stored_events_per_day(%(first_day)s::date, %(last_day)s::date) as stored
        on days.day = stored.day
)

select * from final
order by day
