-- Phases without their attempt, on the given attempt days (expected: no rows).
with day_phases as (
    select phases.*
    from analytics.deployment_phases as phases
    where phases.attempt_date = any(%(days)s::date[])
),

final as (
    select
        day_phases.service_id,
        day_phases.attempt_start,
        day_phases.model,
        day_phases.phase
    from day_phases
    left join analytics.deployment_attempts as attempts
        on
            day_phases.service_id = attempts.service_id
            and day_phases.attempt_start = attempts.attempt_start
    where attempts.service_id is null
)

select * from final
