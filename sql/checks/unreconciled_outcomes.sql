-- Daily rows whose counts or generation differ from the attempts they summarise, on the given days (expected: no rows).
with from_attempts as (
    select
        attempts.attempt_date,
        attempts.service_id,
        attempts.generation,
        count(*) as attempts,
        count(*) filter (where attempts.outcome = 'succeeded') as succeeded,
        count(*) filter (where attempts.outcome = 'failed') as failed,
        count(*) filter (where attempts.outcome = 'superseded') as superseded,
        count(*) filter (where attempts.outcome = 'in_progress') as in_progress
    from analytics.deployment_attempts as attempts
    where attempts.attempt_date = any(%(days)s::date[])
    group by attempts.attempt_date, attempts.service_id, attempts.generation
),

day_outcomes as (
    select daily.*
    from analytics.deployment_outcomes_daily as daily
    where daily.attempt_date = any(%(days)s::date[])
),

day_causes as (
    select
        daily.attempt_date,
        daily.service_id,
        sum(daily.failures) as failures
    from analytics.deployment_failure_causes_daily as daily
    where daily.attempt_date = any(%(days)s::date[])
    group by daily.attempt_date, daily.service_id
),

final as (
    select
        coalesce(from_attempts.attempt_date, day_outcomes.attempt_date) as attempt_date,
        coalesce(from_attempts.service_id, day_outcomes.service_id) as service_id,
        coalesce(from_attempts.generation, day_outcomes.generation) as generation,
        from_attempts.attempts as attempts_counted,
        day_outcomes.attempts as attempts_in_mart,
        from_attempts.failed as failed_counted,
        coalesce(day_causes.failures, 0) as failures_by_cause
    from from_attempts
    full join day_outcomes
        on
            from_attempts.attempt_date = day_outcomes.attempt_date
            and from_attempts.service_id = day_outcomes.service_id
            and from_attempts.generation = day_outcomes.generation
    left join day_causes
        on
            coalesce(from_attempts.attempt_date, day_outcomes.attempt_date)
            = day_causes.attempt_date
            and coalesce(from_attempts.service_id, day_outcomes.service_id) = day_causes.service_id
    where
        (
            from_attempts.attempts, from_attempts.succeeded, from_attempts.failed,
            from_attempts.superseded, from_attempts.in_progress
        )
        is distinct from
        (
            day_outcomes.attempts, day_outcomes.succeeded, day_outcomes.failed,
            day_outcomes.superseded, day_outcomes.in_progress
        )
        or coalesce(from_attempts.failed, 0) <> coalesce(day_causes.failures, 0)
        or day_outcomes.attempts
        <> day_outcomes.succeeded + day_outcomes.failed + day_outcomes.superseded
        + day_outcomes.in_progress
)

select * from final
