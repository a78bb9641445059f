-- What the warehouse knows of a UTC day, defined once (issue 29): loaded_days, the days with a
-- successful load; catchup_given_up_days, the days the catch-up sensor stopped asking for; and
-- day_load_states, per day of a range `loaded`, `not loaded` (yet), `given up` or
-- `unrecoverable` (never loaded and wholly older than the API's retention horizon, so the API
-- answers it as empty for good). `status`, the report, the asset check and the catch-up sensor
-- all read these, so what a second generation's load (load_batches.generation, migration 0012)
-- changes is said here and nowhere else. A parameter is named with its function's name, which sqlfluff
-- takes for a table it cannot find (RF01).
-- noqa: disable=RF01

-- Written by the catch-up sensor (pipelines/assets/catchup.py) when the runs of the nightly job
-- covering a day ended without loading it too many times: it asks for the day no more.
create table if not exists catchup_given_up_days (
    day date primary key,
    runs integer not null,
    given_up_at timestamptz not null default now()
);

comment on table catchup_given_up_days is
'Days the catch-up sensor stopped requesting after runs ended without loading them; '
'a later successful load (modelarts-etl rerun) makes the day loaded again.';

-- Per day of first_day..last_day with a successful load of its whole UTC day: when the last one
-- finished. A load of the lookback hours before a range is keyed by the range's first day but
-- covers other hours: only a batch whose window is the day itself counts. A day's v1 events and
-- its v2 records are loaded apart (load_batches.generation, migration 0012): the day is loaded
-- when a generation has loaded it and no generation that tried it has only failed (a v2 load
-- that failed after the v1 load of the day succeeded leaves the day to be loaded again).
create or replace function loaded_days(first_day date, last_day date)
returns table (day date, loaded_at timestamptz)
language sql stable parallel safe
begin atomic
    with per_generation as (
        select
            days.day,
            batches.generation,
            bool_or(batches.status = 'succeeded') as succeeded,
            max(batches.finished_at) filter (where batches.status = 'succeeded') as loaded_at
        from days_of_range(loaded_days.first_day, loaded_days.last_day) as days
        inner join load_batches as batches
            on
                batches.partition_key = days.day::text
                and batches.window_start_ms
                = extract(epoch from days.day::timestamp at time zone 'UTC')::bigint * 1000
                and batches.window_end_ms
                = extract(epoch from (days.day + 1)::timestamp at time zone 'UTC')::bigint * 1000
        -- a load still running decides nothing yet
        where batches.status in ('succeeded', 'failed', 'abandoned')
        group by days.day, batches.generation
    )

    select
        per_generation.day,
        max(per_generation.loaded_at) as loaded_at
    from per_generation
    group by per_generation.day
    having bool_and(per_generation.succeeded);
end;

-- Per day of first_day..last_day: `loaded`; else `unrecoverable` when it lies before
-- first_recoverable_day (the first day the API still holds, in part: pipelines/horizon.py
-- computes it from MODELARTS_RETENTION_DAYS); else `given up` by the catch-up sensor; else
-- `not loaded`.
create or replace function day_load_states(
    first_day date, last_day date, first_recoverable_day date
)
returns table (day date, state text)
language sql stable parallel safe
begin atomic
    select
        days.day,
        case
            when loaded.day is not null then 'loaded'
            when days.day < day_load_states.first_recoverable_day then 'unrecoverable'
            when given_up.day is not null then 'given up'
            else 'not loaded'
        end as state
    from days_of_range(day_load_states.first_day, day_load_states.last_day) as days
    left join loaded_days(day_load_states.first_day, day_load_states.last_day) as loaded
        on days.day = loaded.day
    left join catchup_given_up_days as given_up on days.day = given_up.day;
end;
