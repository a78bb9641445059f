-- Per UTC day: events stored (v1 events, and v2 records' occurrences on their create_at day), texts outside the vocabulary, failures and those no cause rule matched, and their share of the day's events.
with stored_records as (
    -- v2: a record weighs its event_count on the day of its first occurrence, as in the marts
    select
        (records.created_at at time zone 'UTC')::date as day,
        sum(records.event_count) as events
    from service_event_records as records
    where
        records.created_at >= %(first_day)s::date::timestamp at time zone 'UTC'
        and records.created_at < (%(last_day)s::date + 1)::timestamp at time zone 'UTC'
    group by (records.created_at at time zone 'UTC')::date
),

unknown_texts as (
    select
        texts.event_date as day,
        sum(texts.events) as unknown_text_events
    from analytics.unclassified_event_texts_daily as texts
    where texts.event_date between %(first_day)s and %(last_day)s
    group by texts.event_date
),

failures as (
    select
        causes.attempt_date as day,
        sum(causes.failures) as failures,
        sum(causes.failures) filter (
            where causes.failure_cause = 'unclassified'
        ) as unclassified_failures
    from analytics.deployment_failure_causes_daily as causes
    where causes.attempt_date between %(first_day)s and %(last_day)s
    group by causes.attempt_date
),

day_events as (
    select
        days.day,
        coalesce(stored.events, 0) + coalesce(stored_records.events, 0) as events
    from days_of_range(%(first_day)s::date, %(last_day)s::date) as days
    left join stored_events_per_day(%(first_day)s::date, %(last_day)s::date) as stored
        on days.day = stored.day
    left join stored_records on days.day = stored_records.day
),

final as (
    select
        days.day,
        days.events::bigint as events,
        coalesce(unknown_texts.unknown_text_events, 0)::bigint as unknown_text_events,
        coalesce(failures.failures, 0)::integer as failures,
        coalesce(failures.unclassified_failures, 0)::integer as unclassified_failures,
        (
            coalesce(unknown_texts.unknown_text_events, 0)
            + coalesce(failures.unclassified_failures, 0)
        )::double precision
        / nullif(days.events, 0) as unclassified_share
    from day_events as days
    left join unknown_texts on days.day = unknown_texts.day
    left join failures on days.day = failures.day
)

select * from final
order by day
