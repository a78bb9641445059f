-- Write the rebuilt attempts.
insert into analytics.deployment_attempts (
    service_id, attempt_start, attempt_date, started_at, attempt_end, ended_at, outcome,
    failure_phase, failure_reason, failure_cause, failure_rule_id, cause_category, failure_detail,
    unknown_events, models, time_to_running_ms, duration_ms, events, generation
)
select
    stage.service_id,
    stage.attempt_start,
    stage.attempt_date,
    stage.started_at,
    stage.attempt_end,
    stage.ended_at,
    stage.outcome,
    stage.failure_phase,
    stage.failure_reason,
    stage.failure_cause,
    stage.failure_rule_id,
    stage.cause_category,
    stage.failure_detail,
    stage.unknown_events,
    stage.models,
    stage.time_to_running_ms,
    stage.duration_ms,
    stage.events,
    stage.generation
from deployment_attempt_stage as stage
order by stage.service_id, stage.attempt_start
