-- Per UTC day: its first complete load, the loads after it, and the events those later loads inserted (late events caught).
-- Each generation's loads are compared with their own: a day's v2 load (records) is not a late
-- load of its v1 events; the day's figures add up both generations.
with days as (
    select range_days.day
    from days_of_range(%(first_day)s::date, %(last_day)s::date) as range_days
),

succeeded as (
    select
        batches.batch_id,
        batches.window_start_ms,
        batches.window_end_ms,
        batches.inserted,
        batches.finished_at,
        batches.generation,
        date '1970-01-01' + (batches.window_start_ms / 86400000)::integer as start_day
    from load_batches as batches
    where batches.status = 'succeeded'
),

-- a batch covers a day when its window holds the whole day [00:00, next 00:00) UTC
first_complete as (
    select distinct on (days.day, succeeded.generation)
        days.day,
        succeeded.generation,
        succeeded.batch_id,
        succeeded.inserted,
        succeeded.finished_at
    from days
    inner join succeeded
        on
            succeeded.window_start_ms <= (days.day - date '1970-01-01')::bigint * 86400000
            and succeeded.window_end_ms >= (days.day - date '1970-01-01' + 1)::bigint * 86400000
    order by days.day asc, succeeded.generation asc, succeeded.batch_id asc
),

-- later loads are attributed to the day their window starts in (a rerun, a nightly lookback
-- day, a MODELARTS_LOOKBACK_HOURS window)
later as (
    select
        first_complete.day,
        first_complete.generation,
        count(*)::integer as later_loads,
        sum(succeeded.inserted)::bigint as late_events,
        max(succeeded.finished_at) as last_loaded_at
    from first_complete
    inner join succeeded
        on
            first_complete.day = succeeded.start_day
            and first_complete.generation = succeeded.generation
            and first_complete.batch_id < succeeded.batch_id
    group by first_complete.day, first_complete.generation
),

per_day as (
    select
        first_complete.day,
        min(first_complete.finished_at) as first_loaded_at,
        sum(first_complete.inserted)::bigint as first_load_events,
        sum(coalesce(later.later_loads, 0))::integer as later_loads,
        sum(coalesce(later.late_events, 0))::bigint as late_events,
        max(coalesce(later.last_loaded_at, first_complete.finished_at)) as last_loaded_at
    from first_complete
    left join later
        on
            first_complete.day = later.day
            and first_complete.generation = later.generation
    group by first_complete.day
),

final as (
    select
        days.day,
        per_day.day is not null as loaded,
        per_day.first_loaded_at,
        coalesce(per_day.first_load_events, 0)::bigint as first_load_events,
        coalesce(per_day.later_loads, 0)::integer as later_loads,
        coalesce(per_day.late_events, 0)::bigint as late_events,
        per_day.last_loaded_at
    from days
    left join per_day on days.day = per_day.day
)

select * from final
order by day
