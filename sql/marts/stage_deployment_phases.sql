-- One row per attempt x model x phase of the scoped attempts, from the staged events up to each attempt's terminal event.
create temporary table deployment_phase_stage on commit drop as
with bounds as (
    select
        stage.service_id,
        stage.attempt_start,
        min(stage.generation) as generation,
        min(stage.seq) filter (where stage.is_terminal) as terminal_seq
    from deployment_event_stage as stage
    inner join mart_scope as scope on stage.service_id = scope.service_id
    where
        stage.attempt_start is not null
        and stage.attempt_start < scope.end_ms
    group by stage.service_id, stage.attempt_start
),

attempt_events as (
    -- only the phase events and the columns read below: this CTE is read five times, and all of
    -- the staged events with their texts would make it a temporary file. The attempt's
    -- generation rides along, so the phases need no join back to the attempts.
    select
        stage.service_id,
        stage.attempt_start,
        bounds.generation,
        stage.model,
        stage.phase,
        stage.kind,
        stage.seq,
        stage.occur_time
    from deployment_event_stage as stage
    inner join bounds
        on
            stage.service_id = bounds.service_id
            and stage.attempt_start = bounds.attempt_start
    where
        stage.kind in ('phase_start', 'phase_succeeded', 'phase_failed')
        and (bounds.terminal_seq is null or stage.seq <= bounds.terminal_seq)
),

attempt_models as (
    select distinct
        attempt_events.service_id,
        attempt_events.attempt_start,
        attempt_events.model
    from attempt_events
    where attempt_events.model is not null
),

phase_starts as (
    -- a phase begin naming its model (image building, image pulling, model startup)
    select
        attempt_events.service_id,
        attempt_events.attempt_start,
        attempt_events.generation,
        attempt_events.model,
        attempt_events.phase,
        attempt_events.seq,
        attempt_events.occur_time
    from attempt_events
    where attempt_events.kind = 'phase_start' and attempt_events.model is not null

    union all

    -- a phase begin naming no model ("preparing environment") opens it for every model
    select
        attempt_events.service_id,
        attempt_events.attempt_start,
        attempt_events.generation,
        attempt_models.model,
        attempt_events.phase,
        attempt_events.seq,
        attempt_events.occur_time
    from attempt_events
    inner join attempt_models
        on
            attempt_events.service_id = attempt_models.service_id
            and attempt_events.attempt_start = attempt_models.attempt_start
    where attempt_events.kind = 'phase_start' and attempt_events.model is null

    union all

    -- resource scheduling opens at the model's environment success
    select
        attempt_events.service_id,
        attempt_events.attempt_start,
        attempt_events.generation,
        attempt_events.model,
        'resource_scheduling' as phase,
        attempt_events.seq,
        attempt_events.occur_time
    from attempt_events
    where
        attempt_events.kind = 'phase_succeeded'
        and attempt_events.phase = 'environment_preparation'
),

first_starts as (
    select distinct on (
        phase_starts.service_id, phase_starts.attempt_start, phase_starts.model, phase_starts.phase
    ) phase_starts.*
    from phase_starts
    order by
        phase_starts.service_id,
        phase_starts.attempt_start,
        phase_starts.model,
        phase_starts.phase,
        phase_starts.seq
),

matched as (
    -- a phase ends at the first success/failed event of its own model and phase after its start
    select distinct on (
        first_starts.service_id, first_starts.attempt_start, first_starts.model, first_starts.phase
    )
        first_starts.service_id,
        first_starts.attempt_start,
        first_starts.generation,
        first_starts.model,
        first_starts.phase,
        first_starts.seq as start_seq,
        first_starts.occur_time as phase_start,
        phase_ends.occur_time as phase_end,
        phase_ends.kind as end_kind
    from first_starts
    left join attempt_events as phase_ends
        on
            first_starts.service_id = phase_ends.service_id
            and first_starts.attempt_start = phase_ends.attempt_start
            and first_starts.model = phase_ends.model
            and first_starts.phase = phase_ends.phase
            and first_starts.seq < phase_ends.seq
            and phase_ends.kind in ('phase_succeeded', 'phase_failed')
    order by
        first_starts.service_id,
        first_starts.attempt_start,
        first_starts.model,
        first_starts.phase,
        phase_ends.seq
),

final as (
    select
        matched.service_id,
        matched.generation,
        matched.attempt_start,
        matched.model,
        matched.phase,
        matched.start_seq,
        matched.phase_start,
        matched.phase_end,
        matched.phase_end - matched.phase_start as duration_ms,
        case matched.end_kind
            when 'phase_succeeded' then 'succeeded'
            when 'phase_failed' then 'failed'
            else 'in_progress'
        end as status
    from matched
)

select * from final
