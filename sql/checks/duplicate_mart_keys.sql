-- Keys that appear more than once in a mart, on the given attempt days (expected: no rows).
with attempt_keys as (
    select
        'deployment_attempts' as mart,
        attempts.service_id || ' ' || attempts.attempt_start as mart_key,
        count(*) as copies
    from analytics.deployment_attempts as attempts
    where attempts.attempt_date = any(%(days)s::date[])
    group by attempts.service_id, attempts.attempt_start
    having count(*) > 1
),

phase_keys as (
    select
        'deployment_phases' as mart,
        concat_ws(' ', phases.service_id, phases.attempt_start, phases.model, phases.phase)
            as mart_key,
        count(*) as copies
    from analytics.deployment_phases as phases
    where phases.attempt_date = any(%(days)s::date[])
    group by phases.service_id, phases.attempt_start, phases.model, phases.phase
    having count(*) > 1
),

outcome_keys as (
    select
        'deployment_outcomes_daily' as mart,
        daily.attempt_date || ' ' || daily.service_id as mart_key,
        count(*) as copies
    from analytics.deployment_outcomes_daily as daily
    where daily.attempt_date = any(%(days)s::date[])
    group by daily.attempt_date, daily.service_id
    having count(*) > 1
),

duration_keys as (
    select
        'deployment_phase_durations_daily' as mart,
        concat_ws(' ', daily.attempt_date, daily.service_id, daily.phase) as mart_key,
        count(*) as copies
    from analytics.deployment_phase_durations_daily as daily
    where daily.attempt_date = any(%(days)s::date[])
    group by daily.attempt_date, daily.service_id, daily.phase
    having count(*) > 1
),

cause_keys as (
    select
        'deployment_failure_causes_daily' as mart,
        concat_ws(
            ' ', daily.attempt_date, daily.service_id, daily.failure_cause, daily.cause_category
        ) as mart_key,
        count(*) as copies
    from analytics.deployment_failure_causes_daily as daily
    where daily.attempt_date = any(%(days)s::date[])
    group by daily.attempt_date, daily.service_id, daily.failure_cause, daily.cause_category
    having count(*) > 1
),

final as (
    select * from attempt_keys
    union all
    select * from phase_keys
    union all
    select * from outcome_keys
    union all
    select * from duration_keys
    union all
    select * from cause_keys
)

select * from final
