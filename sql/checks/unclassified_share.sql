-- The day's events outside the vocabulary and failures no rule classified, with their share of the day's events.
with day_events as (
    select count(*) as events
    from service_events as events
    where
        events.occurred_at >= %(day_start)s
        and events.occurred_at < %(day_end)s
),

unknown_texts as (
    select coalesce(sum(daily.events), 0) as unclassified_events
    from analytics.unclassified_event_texts_daily as daily
    where daily.event_date = %(day)s
),

unclassified_failures as (
    select count(*) as unclassified_failures
    from analytics.deployment_attempts as attempts
    where
        attempts.attempt_date = %(day)s
        and attempts.outcome = 'failed'
        and attempts.failure_cause = 'unclassified'
),

final as (
    select
        day_events.events,
        unknown_texts.unclassified_events,
        unclassified_failures.unclassified_failures,
        (unknown_texts.unclassified_events + unclassified_failures.unclassified_failures)::double precision
        / nullif(day_events.events, 0) as unclassified_share
    from day_events
    cross join unknown_texts
    cross join unclassified_failures
)

select * from final
