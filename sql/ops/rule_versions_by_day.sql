-- Per UTC day of a range: the event text rule version of the day's last mart rebuild, and its rule coverage over both generations.
with day_coverage as (
    -- a row per day and generation (migration 0013): the day's coverage adds both up
    select
        coverage.event_date,
        max(coverage.rule_version) as rule_version,
        sum(coverage.events_explained) as events_explained,
        sum(coverage.events) as events
    from analytics.event_text_coverage_daily as coverage
    where coverage.event_date between %(first_day)s::date and %(last_day)s::date
    group by coverage.event_date
),

final as (
    select
        day_coverage.event_date,
        day_coverage.rule_version,
        day_coverage.events_explained::double precision
        / nullif(day_coverage.events, 0) as event_coverage
    from day_coverage
)

select * from final
order by event_date
