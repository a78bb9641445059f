-- Per UTC day: its first complete load, the loads after it, and the events those later loads inserted (late events caught).
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
        date '1970-01-01' + (batches.window_start_ms / 86400000)::integer as start_day
    from load_batches as batches
    where batches.status = 'succeeded'
),

-- a batch covers a day when its window holds the whole day [00:00, next 00:00) UTC
first_complete as (
    select distinct on (days.day)
        days.day,
        succeeded.batch_id,
        succeeded.inserted,
        succeeded.finished_at
    from days
    inner join succeeded
        on
            succeeded.window_start_ms <= (days.day - date '1970-01-01')::bigint * 86400000
            and succeeded.window_end_ms >= (days.day - date '1970-01-01' + 1)::bigint * 86400000
    order by days.day asc, succeeded.batch_id asc
),

-- later loads are attributed to the day their window starts in (a rerun, a nightly lookback
-- day, a MODELARTS_LOOKBACK_HOURS window)
later as (
    select
        first_complete.day,
        count(*)::integer as later_loads,
        sum(succeeded.inserted)::bigint as late_events,
        max(succeeded.finished_at) as last_loaded_at
    from first_complete
    inner join succeeded
        on
            first_complete.day = succeeded.start_day
            and first_complete.batch_id < succeeded.batch_id
    group by first_complete.day
),

final as (
    select
        days.day,
        first_complete.batch_id is not null as loaded,
        first_complete.finished_at as first_loaded_at,
        coalesce(first_complete.inserted, 0)::bigint as first_load_events,
        coalesce(later.later_loads, 0)::integer as later_loads,
        coalesce(later.late_events, 0)::bigint as late_events,
        coalesce(later.last_loaded_at, first_complete.finished_at) as last_loaded_at
    from days
    left join first_complete on days.day = first_complete.day
    left join later on days.day = later.day
)

select * from final
order by day
