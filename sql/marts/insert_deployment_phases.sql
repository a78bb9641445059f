-- Write the rebuilt phases.
insert into analytics.deployment_phases (
    service_id, attempt_start, attempt_date, model, phase, phase_start, phase_end, started_at,
    ended_at, duration_ms, status, generation
)
select
    stage.service_id,
    stage.attempt_start,
    (to_timestamp(stage.attempt_start / 1000.0) at time zone 'UTC')::date as attempt_date,
    stage.model,
    stage.phase,
    stage.phase_start,
    stage.phase_end,
    to_timestamp(stage.phase_start / 1000.0) as started_at,
    to_timestamp(stage.phase_end / 1000.0) as ended_at,
    stage.duration_ms,
    stage.status,
    stage.generation
from deployment_phase_stage as stage
order by stage.service_id, stage.attempt_start, stage.model, stage.phase
