-- Record the rule coverage of the events of each day the pass rebuilt whole, and the rule version that
-- classified them: the days from the first to the last of the pass's partition days, on which every
-- service with events is in mart_scope over the whole day. (A day only queued by the loader has just
-- its queued services rebuilt: its event coverage stays that of its own last rebuild.)
insert into analytics.event_text_coverage_daily (
    event_date, rule_version, events, events_explained, unknown_texts, classified_at
)
with asked as (
    select
        min(days.day) as first_day,
        max(days.day) as last_day
    from unnest(%(partition_days)s::date[]) as days (day)
),

whole_days as (
    select asked.first_day + offsets.n as event_date
    from asked
    cross join generate_series(0, asked.last_day - asked.first_day) as offsets (n)
),

staged_days as (
    select
        date '1970-01-01' + (stage.occur_time / 86400000)::integer as event_date,
        count(*) as events,
        count(*) filter (where stage.kind <> 'unknown') as events_explained
    from deployment_event_stage as stage
    group by date '1970-01-01' + (stage.occur_time / 86400000)::integer
),

day_events as (
    select
        whole_days.event_date,
        coalesce(staged_days.events, 0) as events,
        coalesce(staged_days.events_explained, 0) as events_explained
    from whole_days
    left join staged_days on whole_days.event_date = staged_days.event_date
),

day_shapes as (
    -- per day, a range of the daily table's key (event_date first)
    select
        whole_days.event_date,
        shapes.unknown_texts
    from whole_days
    cross join lateral (
        select count(distinct daily.text_shape) as unknown_texts
        from analytics.unclassified_event_texts_daily as daily
        where daily.event_date = whole_days.event_date
    ) as shapes
),

applied as (
    select max(rules.rule_version) as rule_version
    from mart_rules as rules
),

final as (
    select
        day_events.event_date,
        applied.rule_version,
        day_events.events,
        day_events.events_explained,
        day_shapes.unknown_texts,
        now() as classified_at
    from day_events
    inner join day_shapes on day_events.event_date = day_shapes.event_date
    cross join applied
)

select * from final
on conflict (event_date) do update set
    rule_version = excluded.rule_version,
    events = excluded.events,
    events_explained = excluded.events_explained,
    unknown_texts = excluded.unknown_texts,
    classified_at = excluded.classified_at,
    refreshed_at = now()
