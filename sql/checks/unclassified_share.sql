-- Rule coverage of the given days: the share of their events and of their attempts the event text rules explain.
with days as (
    select unnest(%(days)s::date[]) as event_date
),

final as (
    select
        days.event_date,
        coverage.rule_version,
        coalesce(coverage.events, 0) as events,
        coalesce(coverage.events - coverage.events_explained, 0) as unclassified_events,
        coalesce(coverage.unknown_texts, 0) as unknown_texts,
        coalesce(coverage.attempts, 0) as attempts,
        coalesce(coverage.attempts - coverage.attempts_explained, 0) as unexplained_attempts,
        coalesce(coverage.failures_unclassified, 0) as unclassified_failures,
        coalesce(coverage.failures_unknown_cause, 0) as unknown_cause_failures,
        coverage.event_coverage,
        coverage.attempt_coverage
    from days
    left join analytics.event_text_coverage_daily as coverage
        on days.event_date = coverage.event_date
)

select * from final
order by event_date
