-- One row per attempt x model x phase of the scoped attempts, from the staged events up to each attempt's terminal event.
create temporary table deployment_phase_stage on commit drop as
with attempt_events as (
    -- the phase events of the scoped attempts up to each one's first terminal event (the flag
    -- of stage_deployment_events.sql), with only the columns read below: this CTE is read five
    -- times. A service's events are of one generation: the attempt's rides along, so the phases
    -- need no join back to the attempts.
    select
        stage.service_id,
        stage.attempt_start,
        stage.generation,
        stage.model,
        stage.phase,
        stage.kind,
        stage.seq,
        stage.occur_time
    from deployment_event_stage as stage
    inner join mart_scope as scope on stage.service_id = scope.service_id
    where
        stage.up_to_terminal
        and stage.attempt_start < scope.end_ms
        and stage.kind in ('phase_start', 'phase_succeeded', 'phase_failed')
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
    -- each (attempt, model, phase)'s first start, by hash aggregates rather than sorts: an
    -- attempt's events are in time in its service's sequence (v1: in time; v2: version by
    -- version, then in time), so its first start is also its earliest
    select
        phase_starts.service_id,
        phase_starts.attempt_start,
        min(phase_starts.generation) as generation,
        phase_starts.model,
        phase_starts.phase,
        min(phase_starts.seq) as start_seq,
        min(phase_starts.occur_time) as phase_start
    from phase_starts
    group by
        phase_starts.service_id,
        phase_starts.attempt_start,
        phase_starts.model,
        phase_starts.phase
),

matched as (
    -- a phase ends at the first success/failed event of its own model and phase after its
    -- start: the least sequence number after it, its kind in the number's lowest bit (sequence
    -- numbers are unique in a service)
    select
        first_starts.service_id,
        first_starts.attempt_start,
        first_starts.generation,
        first_starts.model,
        first_starts.phase,
        first_starts.start_seq,
        first_starts.phase_start,
        min(phase_ends.occur_time) as phase_end,
        min(phase_ends.seq * 2 + (phase_ends.kind = 'phase_failed')::integer) as end_key
    from first_starts
    left join attempt_events as phase_ends
        on
            first_starts.service_id = phase_ends.service_id
            and first_starts.attempt_start = phase_ends.attempt_start
            and first_starts.model = phase_ends.model
            and first_starts.phase = phase_ends.phase
            and first_starts.start_seq < phase_ends.seq
            and phase_ends.kind in ('phase_succeeded', 'phase_failed')
    group by
        first_starts.service_id,
        first_starts.attempt_start,
        first_starts.generation,
        first_starts.model,
        first_starts.phase,
        first_starts.start_seq,
        first_starts.phase_start
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
        case mod(matched.end_key, 2)
            when 0 then 'succeeded'
            when 1 then 'failed'
            else 'in_progress'
        end as status
    from matched
)

select * from final
