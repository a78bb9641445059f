-- The most frequent texts of the range that nothing classified: event texts outside the vocabulary, and failure texts no cause rule matched.
with unknown_texts as (
    select
        'unknown event text' as kind,
        texts.event_info as text,
        sum(texts.events)::integer as occurrences,
        count(distinct texts.service_id)::integer as services,
        min(texts.first_occurred_at) as first_seen,
        max(texts.last_occurred_at) as last_seen
    from analytics.unclassified_event_texts_daily as texts
    where texts.event_date between %(first_day)s and %(last_day)s
    group by texts.event_info
),

unmatched_failures as (
    select
        'failure no rule matched' as kind,
        attempts.failure_reason as text,
        count(*)::integer as occurrences,
        count(distinct attempts.service_id)::integer as services,
        min(attempts.ended_at) as first_seen,
        max(attempts.ended_at) as last_seen
    from analytics.deployment_attempts as attempts
    where
        attempts.attempt_date between %(first_day)s and %(last_day)s
        and attempts.outcome = 'failed'
        and attempts.failure_cause = 'unclassified'
    group by attempts.failure_reason
),

final as (
    select * from unknown_texts
    union all
    select * from unmatched_failures
)

select * from final
order by occurrences desc, kind asc, text asc
limit %(top_texts)s
