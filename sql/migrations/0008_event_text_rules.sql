-- Event text rules as data (issue 18): the versioned rules of sql/rules/event_text_rules.tsv
-- (loaded by pipelines/warehouse/rules.py after the migrations, a new version per changed file),
-- the cause category and rule coverage in the marts, fine-cause rules and attempt boundaries for
-- the console family of texts (../shared/API.md) next to the 2019 reference family.

-- Rule versions and rules --------------------------------------------------------------------------

create table if not exists analytics.event_text_rule_versions (
    rule_version integer primary key,
    checksum text not null,
    source_file text not null,
    rules integer not null,
    loaded_at timestamptz not null default now()
);

comment on table analytics.event_text_rule_versions is
    'One row per load of the event text rules file: `modelarts-etl migrate` loads the file again '
    'when its sha256 differs from the latest version''s. The marts use the latest version.';
comment on column analytics.event_text_rule_versions.rule_version is
    'Version number, 1, 2, ... in load order; the latest is the one the marts apply.';
comment on column analytics.event_text_rule_versions.checksum is
    'sha256 (hex) of the rules file''s bytes as loaded.';
comment on column analytics.event_text_rule_versions.source_file is
    'Name of the rules file (sql/rules/event_text_rules.tsv in the repository).';
comment on column analytics.event_text_rule_versions.rules is 'Rules in this version.';
comment on column analytics.event_text_rule_versions.loaded_at is 'When the version was loaded.';

create table if not exists analytics.event_text_rules (
    rule_version integer not null references analytics.event_text_rule_versions (rule_version),
    rule_key text not null,
    family text not null,
    priority integer not null,
    event_type text,
    template text not null,
    role text not null check (role in (
        'start', 'phase_begin', 'phase_success', 'failure', 'success', 'runtime', 'waiting',
        'other', 'cause'
    )),
    phase text check (phase in (
        'image_building', 'environment_preparation', 'resource_scheduling', 'image_pulling',
        'model_startup'
    )),
    cause_category text check (cause_category in (
        'insufficient_resources', 'image_build', 'image_pull', 'startup_health', 'timeout',
        'unknown'
    )),
    example text not null,
    like_pattern text not null,
    first_char text,
    model_from integer,
    model_until text,
    model_until_is_suffix boolean not null,
    reason_after text,
    constraint event_text_rules_pkey primary key (rule_version, rule_key)
);

comment on table analytics.event_text_rules is
    'The event text rules of every loaded version (sql/rules/event_text_rules.tsv, compiled): '
    'what a text means to the marts. Edit the file, not this table.';
comment on column analytics.event_text_rules.rule_version is
    'The version (event_text_rule_versions) this rule belongs to.';
comment on column analytics.event_text_rules.rule_key is 'Unique name of the rule in its version.';
comment on column analytics.event_text_rules.family is
    'reference (docs/VOCABULARY.md), console (the console''s documented texts) or common.';
comment on column analytics.event_text_rules.priority is
    'Lower wins when several rules match one text (then rule_key).';
comment on column analytics.event_text_rules.event_type is
    'Only texts of this event_type match; null: any.';
comment on column analytics.event_text_rules.template is
    'The text as written in the file: {model} and {reason} capture, other {name}s match anything.';
comment on column analytics.event_text_rules.role is
    'start, phase_begin, phase_success, failure, success (running), runtime, waiting (not a '
    'failure), other, or cause (categorises failures whose rule has no category).';
comment on column analytics.event_text_rules.phase is
    'Deployment phase the text begins, ends or fails; null on a failure: the latest open phase.';
comment on column analytics.event_text_rules.cause_category is
    'Cause category of a failure (failure and cause rules); null on a failure: the cause rules '
    'decide, else unknown.';
comment on column analytics.event_text_rules.example is
    'A text the rule must classify; tests/integration/test_event_text_rules.py checks each.';
comment on column analytics.event_text_rules.like_pattern is
    'The template as a LIKE pattern (placeholders -> %), compiled by pipelines/warehouse/rules.py.';
comment on column analytics.event_text_rules.first_char is
    'Text rules: the first character of every text they match (the join key); null: cause rule.';
comment on column analytics.event_text_rules.model_from is
    'Character position (1-based) where the captured model label starts; null: no capture.';
comment on column analytics.event_text_rules.model_until is
    'The literal text that ends the model label.';
comment on column analytics.event_text_rules.model_until_is_suffix is
    'model_until ends the template: the label runs to that suffix (labels may contain it).';
comment on column analytics.event_text_rules.reason_after is
    'The literal text before {reason}: the reason is what follows its first occurrence.';

-- Attempts: cause category, captured reason, unknown texts ---------------------------------------

alter table analytics.deployment_attempts
add column if not exists cause_category text,
add column if not exists failure_detail text,
add column if not exists unknown_events integer not null default 0;

comment on column analytics.deployment_attempts.cause_category is
    'Failures: insufficient_resources, image_build, image_pull, startup_health, timeout or '
    'unknown, from the failure text''s rule (or the cause rules) of sql/rules/event_text_rules.tsv.';
comment on column analytics.deployment_attempts.failure_detail is
    'Failures: the {reason} part of the failure text (the free text after its fixed part).';
comment on column analytics.deployment_attempts.unknown_events is
    'Events with a text no rule knows between the attempt''s start and its end (or the data''s '
    'end): an attempt with none is explained by the rules.';

-- Failure causes per day: by category too -----------------------------------------------------------

alter table analytics.deployment_failure_causes_daily
add column if not exists cause_category text not null default 'unknown';

alter table analytics.deployment_failure_causes_daily
drop constraint deployment_failure_causes_daily_pkey;

alter table analytics.deployment_failure_causes_daily
add constraint deployment_failure_causes_daily_pkey
primary key (attempt_date, service_id, failure_cause, cause_category);

comment on column analytics.deployment_failure_causes_daily.cause_category is
    'Cause category (deployment_attempts.cause_category): insufficient_resources, image_build, '
    'image_pull, startup_health, timeout or unknown.';

create index if not exists deployment_failure_causes_daily_category_idx
on analytics.deployment_failure_causes_daily (cause_category, attempt_date);

-- Unknown texts: their shape, for counting alike texts together -------------------------------------

alter table analytics.unclassified_event_texts_daily
add column if not exists text_shape text not null default '';

comment on column analytics.unclassified_event_texts_daily.text_shape is
    'The text''s first 200 characters with quoted parts, ids and numbers collapsed ('''', <id>, '
    '<n>) and spacing normalised: alike unknown texts share a shape (top unmatched texts).';

-- Coverage of the rules per day ----------------------------------------------------------------------

create table if not exists analytics.event_text_coverage_daily (
    event_date date primary key,
    rule_version integer,
    events integer,
    events_explained integer,
    unknown_texts integer,
    attempts integer not null default 0,
    attempts_explained integer not null default 0,
    failures integer not null default 0,
    failures_unknown_cause integer not null default 0,
    failures_unclassified integer not null default 0,
    event_coverage double precision generated always as (
        events_explained::double precision / nullif(events, 0)
    ) stored,
    attempt_coverage double precision generated always as (
        attempts_explained::double precision / nullif(attempts, 0)
    ) stored,
    classified_at timestamptz,
    refreshed_at timestamptz not null default now()
);

comment on table analytics.event_text_coverage_daily is
    'Per UTC day: how much of the data the event text rules explain, and which rule version '
    'classified the day''s events (`modelarts-etl status` shows it). Rebuilt with the marts.';
comment on column analytics.event_text_coverage_daily.event_date is
    'UTC day: of the events for the event columns, of the attempts'' start for the attempt columns.';
comment on column analytics.event_text_coverage_daily.rule_version is
    'The rule version (event_text_rule_versions) of the day''s last rebuild; null: the day itself '
    'was never rebuilt (only its attempts, by the next day''s rebuild).';
comment on column analytics.event_text_coverage_daily.events is
    'Events of the day (all services); null until the day is rebuilt.';
comment on column analytics.event_text_coverage_daily.events_explained is
    'Events of the day whose text a rule matched (events minus unknown texts).';
comment on column analytics.event_text_coverage_daily.unknown_texts is
    'Distinct text shapes (unclassified_event_texts_daily.text_shape) no rule matched that day.';
comment on column analytics.event_text_coverage_daily.attempts is
    'Attempts started that day (deployment_attempts).';
comment on column analytics.event_text_coverage_daily.attempts_explained is
    'Attempts started that day with no unknown text inside them (unknown_events = 0).';
comment on column analytics.event_text_coverage_daily.failures is 'Failed attempts started that day.';
comment on column analytics.event_text_coverage_daily.failures_unknown_cause is
    'Failed attempts whose cause_category is unknown.';
comment on column analytics.event_text_coverage_daily.failures_unclassified is
    'Failed attempts whose failure_cause is unclassified (no failure_cause_rules match).';
comment on column analytics.event_text_coverage_daily.event_coverage is
    'events_explained / events (null without events): the share of events the rules explain.';
comment on column analytics.event_text_coverage_daily.attempt_coverage is
    'attempts_explained / attempts (null without attempts).';
comment on column analytics.event_text_coverage_daily.classified_at is
    'When the day''s events were last classified (its own rebuild).';
comment on column analytics.event_text_coverage_daily.refreshed_at is
    'When the row was last written (its own rebuild or the next day''s).';

-- Fine failure causes of the console texts ----------------------------------------------------------

insert into analytics.failure_cause_rules (priority, pattern, cause, description) values
    (51, 'errimagepull|imagepullbackoff|manifest unknown|image pull did not finish', 'image_pull',
        'image pull reasons, whatever text carries them'),
    (61, 'failed to mount |invalid environment variable|config map .* not found', 'environment',
        'environment reasons, whatever text carries them'),
    (105, '^insufficient [^.]*\. the scheduling failed\.', 'insufficient_resources',
        'console: scheduling failed'),
    (111, '^service deployment timed out\.', 'timeout', 'console: the deployment timed out'),
    (131, '^failed to create model image ', 'image_build', 'console: image building failed'),
    (151, '^failed to start service ', 'model_startup', 'console: the service did not start'),
    (901, '^service .* failed\. error: ', 'other', 'console: any other service failure')
on conflict on constraint failure_cause_rules_key do nothing;

-- Attempt boundaries of both families --------------------------------------------------------------

-- Starts and terminal texts of the reference and console families (LIKE only: evaluated for every
-- row inserted). The predicate must stay identical to the one in sql/marts/stage_mart_scope.sql;
-- tests/integration/test_event_text_rules.py fails when a start, success or failure rule's
-- example falls outside it.
drop index if exists service_events_deployment_boundary_idx;

create index if not exists service_events_deployment_boundary_idx
on service_events (service_id, occur_time)
where event_info = 'start to deploy service'
or event_info = 'service is running'
or event_info like 'deploy service failed: %'
or event_info like 'model (%) build image failed: %'
or event_info like '[%] prepare environment failed: %'
or event_info like '[%] schedule resource failed: %'
or event_info like '[%] pull image failed: %'
or event_info like '[%] start model failed: %'
or event_info = 'The service starts to deploy.'
or event_info like 'Service % started.'
or event_info like 'Service % failed. Error: %'
or event_info like 'Service deployment timed out. Error: %'
or event_info like 'Failed to create model image %. Error: %'
or event_info like 'Failed to start service %. Error: %'
or event_info like 'Insufficient %. The scheduling failed. Supplementary information: %';
