-- Comments on the analytics columns that 0003 left without one: BI users read them in their tool
-- (\d+ in psql); tests/integration/test_analytics_comments.py fails on any column without one.

-- Failure cause rules -----------------------------------------------------------------------------

comment on column analytics.failure_cause_rules.rule_id is
    'Identity of the rule; breaks priority ties (lower first) and is recorded in '
    'deployment_attempts.failure_rule_id.';
comment on column analytics.failure_cause_rules.description is
    'Free text for people: what the rule is meant to catch. Not used in matching.';
comment on column analytics.failure_cause_rules.created_at is
    'When the rule was inserted (timestamptz). Attempts rebuilt before it keep their old cause '
    'until their days are rematerialized.';

-- Attempts ----------------------------------------------------------------------------------------

comment on column analytics.deployment_attempts.service_id is
    'Inference service (service_events.service_id, services.service_id); with attempt_start the '
    'key.';
comment on column analytics.deployment_attempts.started_at is
    'attempt_start as a timestamptz (to_timestamp(attempt_start / 1000.0)).';
comment on column analytics.deployment_attempts.ended_at is
    'attempt_end as a timestamptz; null while in progress.';
comment on column analytics.deployment_attempts.refreshed_at is
    'When this row was last rebuilt (the transaction time of the materialization that wrote it).';

-- Phases ------------------------------------------------------------------------------------------

comment on column analytics.deployment_phases.service_id is
    'Inference service; with attempt_start the attempt (analytics.deployment_attempts) of the '
    'phase.';
comment on column analytics.deployment_phases.attempt_start is
    'Epoch ms (UTC) of the attempt''s "start to deploy service"; with service_id references '
    'deployment_attempts.';
comment on column analytics.deployment_phases.model is
    'Model label "NAME VERSION" as the phase events name it; environment preparation gets a row '
    'per model of the attempt.';
comment on column analytics.deployment_phases.phase is
    'image_building, environment_preparation, resource_scheduling, image_pulling or model_startup '
    '(the order of a deployment).';
comment on column analytics.deployment_phases.started_at is 'phase_start as a timestamptz.';
comment on column analytics.deployment_phases.ended_at is
    'phase_end as a timestamptz; null while the phase has no success/failed event.';
comment on column analytics.deployment_phases.status is
    'succeeded or failed from the phase''s own end event; in_progress when it has none (left open '
    'by another model''s failure, a "deploy service failed", supersession or the end of the data).';
comment on column analytics.deployment_phases.refreshed_at is
    'When this row was last rebuilt (the transaction time of the materialization that wrote it).';

-- Outcomes per day --------------------------------------------------------------------------------

comment on column analytics.deployment_outcomes_daily.attempt_date is
    'UTC day of the attempts'' start (deployment_attempts.attempt_date); with service_id the key.';
comment on column analytics.deployment_outcomes_daily.service_id is 'Inference service.';
comment on column analytics.deployment_outcomes_daily.attempts is
    'Attempts started that day: succeeded + failed + superseded + in_progress.';
comment on column analytics.deployment_outcomes_daily.succeeded is
    'Attempts with outcome succeeded ("service is running" before any failure).';
comment on column analytics.deployment_outcomes_daily.failed is
    'Attempts with outcome failed (a failure event first); by cause in '
    'deployment_failure_causes_daily.';
comment on column analytics.deployment_outcomes_daily.superseded is
    'Attempts with outcome superseded (the next start came before any terminal event).';
comment on column analytics.deployment_outcomes_daily.in_progress is
    'Attempts with no terminal event yet in the data; they move to another outcome when a later '
    'day''s load rebuilds them.';
comment on column analytics.deployment_outcomes_daily.refreshed_at is
    'When this row was last rebuilt (the transaction time of the materialization that wrote it).';

-- Phase durations per day -------------------------------------------------------------------------

comment on column analytics.deployment_phase_durations_daily.attempt_date is
    'UTC day of the attempts'' start (deployment_phases.attempt_date).';
comment on column analytics.deployment_phase_durations_daily.service_id is 'Inference service.';
comment on column analytics.deployment_phase_durations_daily.phase is
    'Deployment phase, as deployment_phases.phase.';
comment on column analytics.deployment_phase_durations_daily.succeeded is
    'Phase rows with status succeeded; the percentiles and max_ms are over these only.';
comment on column analytics.deployment_phase_durations_daily.failed is
    'Phase rows with status failed.';
comment on column analytics.deployment_phase_durations_daily.in_progress is
    'Phase rows with status in_progress (no end event of their own).';
comment on column analytics.deployment_phase_durations_daily.p90_ms is
    '90th percentile (continuous) of the duration of the succeeded phases, ms.';
comment on column analytics.deployment_phase_durations_daily.p95_ms is
    '95th percentile (continuous) of the duration of the succeeded phases, ms.';
comment on column analytics.deployment_phase_durations_daily.refreshed_at is
    'When this row was last rebuilt (the transaction time of the materialization that wrote it).';

-- Failure causes per day --------------------------------------------------------------------------

comment on column analytics.deployment_failure_causes_daily.attempt_date is
    'UTC day of the failed attempts'' start.';
comment on column analytics.deployment_failure_causes_daily.service_id is 'Inference service.';
comment on column analytics.deployment_failure_causes_daily.failure_cause is
    'Normalised cause (deployment_attempts.failure_cause); ''unclassified'' when no rule matched.';
comment on column analytics.deployment_failure_causes_daily.failures is
    'Failed attempts of the day, service and cause; summed over causes it equals '
    'deployment_outcomes_daily.failed.';
comment on column analytics.deployment_failure_causes_daily.refreshed_at is
    'When this row was last rebuilt (the transaction time of the materialization that wrote it).';

-- Unclassified event texts per day ----------------------------------------------------------------

comment on column analytics.unclassified_event_texts_daily.event_date is
    'UTC day of the events (occur_time), not of an attempt.';
comment on column analytics.unclassified_event_texts_daily.service_id is 'Inference service.';
comment on column analytics.unclassified_event_texts_daily.event_info_md5 is
    'md5 of event_info (service_events.event_info_md5); the key holds it because a text may be '
    'too long for a btree.';
comment on column analytics.unclassified_event_texts_daily.event_type is
    'event_type as received from the API (normal or abnormal; other values are kept).';
comment on column analytics.unclassified_event_texts_daily.event_info is
    'The event text, verbatim: recognised neither as a deployment event nor as a known runtime '
    'event of the vocabulary (docs/VOCABULARY.md).';
comment on column analytics.unclassified_event_texts_daily.events is
    'Events with this text, type and service on that day.';
comment on column analytics.unclassified_event_texts_daily.first_occurred_at is
    'occur_time of the day''s first such event, as a timestamptz.';
comment on column analytics.unclassified_event_texts_daily.last_occurred_at is
    'occur_time of the day''s last such event, as a timestamptz.';
comment on column analytics.unclassified_event_texts_daily.refreshed_at is
    'When this row was last rebuilt (the transaction time of the materialization that wrote it).';
