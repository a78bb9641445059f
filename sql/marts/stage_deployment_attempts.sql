-- One row per scoped attempt: outcome, end, failure phase, cause (analytics.failure_cause_rules) and cause category (mart_rules), models.
create temporary table deployment_attempt_stage on commit drop as
with starts as (
    select
        stage.service_id,
        stage.generation,
        stage.attempt_start,
        lead(stage.attempt_start) over (
            partition by stage.service_id order by stage.seq
        ) as next_start
    from deployment_event_stage as stage
    where stage.kind = 'deployment_start'
),

terminals as (
    -- the first terminal event decides; anything after it (e.g. a runtime restart) is not deployment
    select distinct on (stage.service_id, stage.attempt_start)
        stage.service_id,
        stage.attempt_start,
        stage.seq as terminal_seq,
        stage.kind as terminal_kind,
        stage.phase as terminal_phase,
        stage.occur_time as terminal_time,
        stage.event_info as terminal_info,
        stage.reason as terminal_reason,
        stage.cause_category as terminal_category
    from deployment_event_stage as stage
    where stage.is_terminal and stage.attempt_start is not null
    order by stage.service_id, stage.attempt_start, stage.seq
),

attempt_events as (
    select
        stage.service_id,
        stage.attempt_start,
        stage.model,
        stage.kind,
        stage.seq,
        stage.occurrences
    from deployment_event_stage as stage
    left join terminals
        on
            stage.service_id = terminals.service_id
            and stage.attempt_start = terminals.attempt_start
    where
        stage.attempt_start is not null
        and (terminals.terminal_seq is null or stage.seq <= terminals.terminal_seq)
),

deployment_events as (
    select attempt_events.*
    from attempt_events
    where attempt_events.kind not in ('runtime', 'unknown')
),

model_mentions as (
    select
        deployment_events.service_id,
        deployment_events.attempt_start,
        deployment_events.model,
        min(deployment_events.seq) as first_seq
    from deployment_events
    where deployment_events.model is not null
    group by deployment_events.service_id, deployment_events.attempt_start, deployment_events.model
),

attempt_models as (
    select
        model_mentions.service_id,
        model_mentions.attempt_start,
        array_agg(model_mentions.model order by model_mentions.first_seq) as models
    from model_mentions
    group by model_mentions.service_id, model_mentions.attempt_start
),

event_counts as (
    select
        attempt_events.service_id,
        attempt_events.attempt_start,
        -- occurrences: a v2 record counts its event_count, a v1 event 1
        coalesce(
            sum(attempt_events.occurrences) filter (
                where attempt_events.kind not in ('runtime', 'unknown')
            ),
            0
        ) as events,
        coalesce(
            sum(attempt_events.occurrences) filter (where attempt_events.kind = 'unknown'), 0
        ) as unknown_events
    from attempt_events
    group by attempt_events.service_id, attempt_events.attempt_start
),

open_phases as (
    -- the latest phase still open: where a "deploy service failed" caught the attempt
    select distinct on (phases.service_id, phases.attempt_start)
        phases.service_id,
        phases.attempt_start,
        phases.phase
    from deployment_phase_stage as phases
    where phases.status = 'in_progress'
    order by
        phases.service_id asc, phases.attempt_start asc, phases.start_seq desc, phases.phase asc
),

joined as (
    select
        starts.service_id,
        starts.generation,
        starts.attempt_start,
        starts.next_start,
        terminals.terminal_kind,
        terminals.terminal_phase,
        terminals.terminal_time,
        terminals.terminal_info,
        terminals.terminal_reason,
        terminals.terminal_category,
        open_phases.phase as open_phase,
        coalesce(attempt_models.models, array[]::text[]) as models,
        coalesce(event_counts.events, 0) as events,
        coalesce(event_counts.unknown_events, 0) as unknown_events
    from starts
    left join terminals
        on
            starts.service_id = terminals.service_id
            and starts.attempt_start = terminals.attempt_start
    left join attempt_models
        on
            starts.service_id = attempt_models.service_id
            and starts.attempt_start = attempt_models.attempt_start
    left join event_counts
        on
            starts.service_id = event_counts.service_id
            and starts.attempt_start = event_counts.attempt_start
    left join open_phases
        on
            starts.service_id = open_phases.service_id
            and starts.attempt_start = open_phases.attempt_start
    inner join mart_scope as scope on starts.service_id = scope.service_id
    where starts.attempt_start < scope.end_ms
),

with_outcome as (
    select
        joined.*,
        case
            when joined.terminal_kind = 'running' then 'succeeded'
            when joined.terminal_kind is not null then 'failed'
            when joined.next_start is not null then 'superseded'
            else 'in_progress'
        end as outcome,
        coalesce(joined.terminal_time, joined.next_start) as attempt_end
    from joined
),

final as (
    select
        with_outcome.service_id,
        with_outcome.generation,
        with_outcome.attempt_start,
        (to_timestamp(with_outcome.attempt_start / 1000.0) at time zone 'UTC')::date
            as attempt_date,
        to_timestamp(with_outcome.attempt_start / 1000.0) as started_at,
        with_outcome.attempt_end,
        to_timestamp(with_outcome.attempt_end / 1000.0) as ended_at,
        with_outcome.outcome,
        case
            when with_outcome.outcome <> 'failed' then null
            when with_outcome.terminal_kind = 'phase_failed' then with_outcome.terminal_phase
            else coalesce(with_outcome.open_phase, 'deployment')
        end as failure_phase,
        case when with_outcome.outcome = 'failed' then with_outcome.terminal_info end
            as failure_reason,
        case
            when with_outcome.outcome = 'failed' then coalesce(rule.cause, 'unclassified')
        end as failure_cause,
        rule.rule_id as failure_rule_id,
        case
            when with_outcome.outcome = 'failed'
                then coalesce(with_outcome.terminal_category, cause_rule.cause_category, 'unknown')
        end as cause_category,
        case when with_outcome.outcome = 'failed' then with_outcome.terminal_reason end
            as failure_detail,
        with_outcome.unknown_events,
        with_outcome.models,
        case
            when with_outcome.outcome = 'succeeded'
                then with_outcome.attempt_end - with_outcome.attempt_start
        end as time_to_running_ms,
        with_outcome.attempt_end - with_outcome.attempt_start as duration_ms,
        with_outcome.events
    from with_outcome
    -- the rules are matched for failures only: the outcome is tested inside each lateral (a
    -- one-time filter), not in its join condition, which Postgres tests after running the
    -- lateral for every attempt (a regular expression per rule and attempt)
    left join lateral (
        select
            rules.rule_id,
            rules.cause
        from (
            -- in priority order, fenced (OFFSET 0) so that the match is tested above the sort:
            -- the limit stops at the first rule that matches rather than testing them all
            select
                failure_rules.rule_id,
                failure_rules.cause,
                failure_rules.pattern,
                failure_rules.priority
            from analytics.failure_cause_rules as failure_rules
            order by failure_rules.priority, failure_rules.rule_id
            offset 0 -- noqa: AM09
        ) as rules
        where
            with_outcome.outcome = 'failed'
            and with_outcome.terminal_info ~* rules.pattern
        order by rules.priority, rules.rule_id
        limit 1
    ) as rule on true
    left join lateral (
        -- a failure whose text rule gives no category: the first cause rule its text matches
        select cause_rules.cause_category
        from mart_rules as cause_rules
        where
            with_outcome.outcome = 'failed'
            and with_outcome.terminal_category is null
            and cause_rules.role = 'cause'
            and with_outcome.terminal_info ilike cause_rules.like_pattern
        order by cause_rules.priority, cause_rules.rule_key
        limit 1
    ) as cause_rule on true
)

select * from final
