-- Record the day's rule coverage of its events and the rule version that classified them.
insert into analytics.event_text_coverage_daily (
    event_date, rule_version, events, events_explained, unknown_texts, classified_at
)
with day_events as (
    select
        count(*) as events,
        count(*) filter (where stage.kind <> 'unknown') as events_explained
    from deployment_event_stage as stage
    where
        stage.occur_time >= %(day_start_ms)s
        and stage.occur_time < %(day_end_ms)s
),

day_shapes as (
    select count(distinct daily.text_shape) as unknown_texts
    from analytics.unclassified_event_texts_daily as daily
    where daily.event_date = %(day)s
),

applied as (
    select max(rules.rule_version) as rule_version
    from mart_rules as rules
),

final as (
    select
        %(day)s::date as event_date,
        applied.rule_version,
        day_events.events,
        day_events.events_explained,
        day_shapes.unknown_texts,
        now() as classified_at
    from day_events
    cross join day_shapes
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
