-- Rule coverage of the given days: the share of their events and of their attempts the event text rules explain (both generations).
with days as (
    select unnest(%(days)s::date[]) as event_date
),

day_coverage as (
    -- a row per day and generation (migration 0013): the day's figures add both up
    select
        coverage.event_date,
        max(coverage.rule_version) as rule_version,
        sum(coverage.events) as events,
        sum(coverage.events_explained) as events_explained,
        sum(coverage.unknown_texts) as unknown_texts,
        sum(coverage.attempts) as attempts,
        sum(coverage.attempts_explained) as attempts_explained,
        sum(coverage.failures_unclassified) as failures_unclassified,
        sum(coverage.failures_unknown_cause) as failures_unknown_cause
    from analytics.event_text_coverage_daily as coverage
    where coverage.event_date = any(%(days)s::date[])
    group by coverage.event_date
),

final as (
    select
        days.event_date,
        coverage.rule_version,
        coalesce(coverage.events, 0)::integer as events,
        coalesce(coverage.events - coverage.events_explained, 0)::integer as unclassified_events,
        coalesce(coverage.unknown_texts, 0)::integer as unknown_texts,
        coalesce(coverage.attempts, 0)::integer as attempts,
        coalesce(coverage.attempts - coverage.attempts_explained, 0)::integer
            as unexplained_attempts,
        coalesce(coverage.failures_unclassified, 0)::integer as unclassified_failures,
        coalesce(coverage.failures_unknown_cause, 0)::integer as unknown_cause_failures,
        coverage.events_explained::double precision / nullif(coverage.events, 0)
            as event_coverage,
        coverage.attempts_explained::double precision / nullif(coverage.attempts, 0)
            as attempt_coverage
    from days
    left join day_coverage as coverage
        on days.event_date = coverage.event_date
)

select * from final
order by event_date
