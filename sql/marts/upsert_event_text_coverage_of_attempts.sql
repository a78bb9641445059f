-- Record the rule coverage of the attempts of every day whose attempts this rebuild touched, per generation.
insert into analytics.event_text_coverage_daily (
    event_date, generation, attempts, attempts_explained, failures, failures_unknown_cause,
    failures_unclassified
)
with affected_dates as (
    -- both generations of each day: a day that lost a generation's attempts says so
    select distinct
        affected.attempt_date,
        generations.generation
    from mart_affected_days as affected
    cross join (values ('v1'), ('v2')) as generations (generation)
),

final as (
    select
        affected_dates.attempt_date as event_date,
        affected_dates.generation,
        count(attempts.service_id) as attempts,
        count(attempts.service_id) filter (where attempts.unknown_events = 0)
            as attempts_explained,
        count(attempts.service_id) filter (where attempts.outcome = 'failed') as failures,
        count(attempts.service_id) filter (
            where attempts.outcome = 'failed' and attempts.cause_category = 'unknown'
        ) as failures_unknown_cause,
        count(attempts.service_id) filter (
            where attempts.outcome = 'failed' and attempts.failure_cause = 'unclassified'
        ) as failures_unclassified
    from affected_dates
    left join analytics.deployment_attempts as attempts
        on
            affected_dates.attempt_date = attempts.attempt_date
            and affected_dates.generation = attempts.generation
    group by affected_dates.attempt_date, affected_dates.generation
)

select * from final
on conflict (event_date, generation) do update set
    attempts = excluded.attempts,
    attempts_explained = excluded.attempts_explained,
    failures = excluded.failures,
    failures_unknown_cause = excluded.failures_unknown_cause,
    failures_unclassified = excluded.failures_unclassified,
    refreshed_at = now()
