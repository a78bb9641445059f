-- Record the rule coverage of the events of each day the pass rebuilt whole, per generation (v1
-- events; v2 records, each weighing its event_count on its create_at day), and the rule version that
-- classified them: the days from the first to the last of the pass's partition days, on which every
-- service with events or records is in mart_scope over the whole day. (A day only queued by the loader has just
-- its queued services rebuilt: its event coverage stays that of its own last rebuild.)
insert into analytics.event_text_coverage_daily (
    event_date, generation, rule_version, events, events_explained, unknown_texts, classified_at
)
with asked as (
    select
        min(days.day) as first_day,
        max(days.day) as last_day
    from unnest(%(partition_days)s::date[]) as days (day)
),

whole_days as (
    -- a row per day and generation, with or without data: a day that lost its events says so
    select
        asked.first_day + offsets.n as event_date,
        generations.generation
    from asked
    cross join generate_series(0, asked.last_day - asked.first_day) as offsets (n)
    cross join (values ('v1'), ('v2')) as generations (generation)
),

staged_days as (
    select
        date '1970-01-01' + (stage.occur_time / 86400000)::integer as event_date,
        stage.generation,
        sum(stage.occurrences) as events,
        sum(stage.occurrences) filter (where stage.kind <> 'unknown') as events_explained
    from deployment_event_stage as stage
    group by date '1970-01-01' + (stage.occur_time / 86400000)::integer, stage.generation
),

day_events as (
    select
        whole_days.event_date,
        whole_days.generation,
        coalesce(staged_days.events, 0) as events,
        coalesce(staged_days.events_explained, 0) as events_explained
    from whole_days
    left join staged_days
        on
            whole_days.event_date = staged_days.event_date
            and whole_days.generation = staged_days.generation
),

day_shapes as (
    -- per day, a range of the daily table's key (event_date first)
    select
        whole_days.event_date,
        whole_days.generation,
        shapes.unknown_texts
    from whole_days
    cross join lateral (
        select count(distinct daily.text_shape) as unknown_texts
        from analytics.unclassified_event_texts_daily as daily
        where
            daily.event_date = whole_days.event_date
            and daily.generation = whole_days.generation
    ) as shapes
),

applied as (
    select max(rules.rule_version) as rule_version
    from mart_rules as rules
),

final as (
    select
        day_events.event_date,
        day_events.generation,
        applied.rule_version,
        day_events.events,
        day_events.events_explained,
        day_shapes.unknown_texts,
        now() as classified_at
    from day_events
    inner join day_shapes
        on
            day_events.event_date = day_shapes.event_date
            and day_events.generation = day_shapes.generation
    cross join applied
)

select * from final
on conflict (event_date, generation) do update set
    rule_version = excluded.rule_version,
    events = excluded.events,
    events_explained = excluded.events_explained,
    unknown_texts = excluded.unknown_texts,
    classified_at = excluded.classified_at,
    refreshed_at = now()
