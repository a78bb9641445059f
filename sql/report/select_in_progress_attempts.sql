-- Attempts started up to the range's last day that have no terminal event yet, with the phase they are in.
with open_attempts as (
    select
        attempts.service_id,
        attempts.attempt_start,
        attempts.started_at,
        attempts.models,
        attempts.events
    from analytics.deployment_attempts as attempts
    where
        attempts.attempt_date <= %(last_day)s
        and attempts.outcome = 'in_progress'
),

current_phase as (
    select distinct on (phases.service_id, phases.attempt_start)
        phases.service_id,
        phases.attempt_start,
        phases.phase,
        phases.model
    from analytics.deployment_phases as phases
    inner join open_attempts
        on
            phases.service_id = open_attempts.service_id
            and phases.attempt_start = open_attempts.attempt_start
    where phases.status = 'in_progress'
    order by phases.service_id asc, phases.attempt_start asc, phases.phase_start desc
),

final as (
    select
        open_attempts.service_id,
        services.service_name,
        open_attempts.started_at,
        current_phase.phase as current_phase,
        current_phase.model as current_model,
        array_to_string(open_attempts.models, ', ') as models,
        open_attempts.events
    from open_attempts
    left join current_phase
        on
            open_attempts.service_id = current_phase.service_id
            and open_attempts.attempt_start = current_phase.attempt_start
    left join services on open_attempts.service_id = services.service_id
)

select * from final
order by started_at, service_id
