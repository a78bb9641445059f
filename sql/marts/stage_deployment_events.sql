-- The scoped events, parsed by the deployment vocabulary (VOCABULARY.md), ordered and assigned to attempts.
-- In one millisecond events follow the deployment sequence (start, build, environment, scheduling,
-- pulling, startup, terminal), except that a terminal event sharing its millisecond with a start
-- closes the previous attempt: an attempt cannot end in the millisecond it starts.
create temporary table deployment_event_stage on commit drop as
with scoped as (
    select
        events.service_id,
        events.occur_time,
        events.event_type,
        events.event_info,
        events.event_info_md5
    from mart_scope as scope
    inner join service_events as events
        on
            scope.service_id = events.service_id
            and events.occur_time >= scope.lo_ms
            and (scope.hi_ms is null or events.occur_time < scope.hi_ms)
),

parsed as (
    select
        scoped.*,
        case
            when scoped.event_info = 'start to deploy service'
                then array['deployment_start', null, null]
            when scoped.event_info = 'preparing environment'
                then array['environment_start', 'environment_preparation', null]
            when scoped.event_info = 'service is running'
                then array['running', null, null]
            when scoped.event_info in (
                'stop service', 'service stopped', 'update service configuration'
            )
                then array['runtime', null, null]
            when scoped.event_info ~ '^scale service instances from [0-9]+ to [0-9]+$'
                then array['runtime', null, null]
            when scoped.event_info ~ '^\[.*\] instance restarted unexpectedly$'
                then array['runtime', null, substring(scoped.event_info from '^\[(.*)\] instance restarted unexpectedly$')]
            when scoped.event_info ~ '^deploy service failed: '
                then array['deployment_failure', null, null]
            when scoped.event_info ~ '^building image for model \[.*\]$'
                then array['phase_start', 'image_building', substring(scoped.event_info from '^building image for model \[(.*)\]$')]
            when scoped.event_info ~ '^model \(.*\) build image success$'
                then array['phase_succeeded', 'image_building', substring(scoped.event_info from '^model \((.*)\) build image success$')]
            when scoped.event_info ~ '^model \(.*?\) build image failed: '
                then array['phase_failed', 'image_building', substring(scoped.event_info from '^model \((.*?)\) build image failed: ')]
            when scoped.event_info ~ '^\[.*\] prepare environment success$'
                then array['phase_succeeded', 'environment_preparation', substring(scoped.event_info from '^\[(.*)\] prepare environment success$')]
            when scoped.event_info ~ '^\[.*?\] prepare environment failed: '
                then array['phase_failed', 'environment_preparation', substring(scoped.event_info from '^\[(.*?)\] prepare environment failed: ')]
            when scoped.event_info ~ '^\[.*\] schedule resource success$'
                then array['phase_succeeded', 'resource_scheduling', substring(scoped.event_info from '^\[(.*)\] schedule resource success$')]
            when scoped.event_info ~ '^\[.*?\] schedule resource failed: '
                then array['phase_failed', 'resource_scheduling', substring(scoped.event_info from '^\[(.*?)\] schedule resource failed: ')]
            when scoped.event_info ~ '^\[.*\] pulling model image$'
                then array['phase_start', 'image_pulling', substring(scoped.event_info from '^\[(.*)\] pulling model image$')]
            when scoped.event_info ~ '^\[.*\] pull image success$'
                then array['phase_succeeded', 'image_pulling', substring(scoped.event_info from '^\[(.*)\] pull image success$')]
            when scoped.event_info ~ '^\[.*?\] pull image failed: '
                then array['phase_failed', 'image_pulling', substring(scoped.event_info from '^\[(.*?)\] pull image failed: ')]
            when scoped.event_info ~ '^\[.*\] starting model$'
                then array['phase_start', 'model_startup', substring(scoped.event_info from '^\[(.*)\] starting model$')]
            when scoped.event_info ~ '^\[.*\] start model success$'
                then array['phase_succeeded', 'model_startup', substring(scoped.event_info from '^\[(.*)\] start model success$')]
            when scoped.event_info ~ '^\[.*?\] start model failed: '
                then array['phase_failed', 'model_startup', substring(scoped.event_info from '^\[(.*?)\] start model failed: ')]
            else array['unknown', null, null]
        end as parts
    from scoped
),

classified as (
    select
        parsed.service_id,
        parsed.occur_time,
        parsed.event_type,
        parsed.event_info,
        parsed.event_info_md5,
        parsed.parts[1] as kind,
        parsed.parts[2] as phase,
        parsed.parts[3] as model,
        parsed.parts[1] in ('phase_failed', 'deployment_failure', 'running') as is_terminal,
        case parsed.parts[1]
            when 'deployment_start' then 0
            when 'environment_start' then 20
            when 'deployment_failure' then 60
            when 'running' then 61
            when 'runtime' then 70
            when 'unknown' then 70
            else
                case parsed.parts[2]
                    when 'image_building' then 10
                    when 'environment_preparation' then 20
                    when 'resource_scheduling' then 30
                    when 'image_pulling' then 40
                    when 'model_startup' then 50
                end
                + case parsed.parts[1]
                    when 'phase_start' then 0
                    when 'phase_succeeded' then 1
                    else 2
                end
        end as sequence_rank
    from parsed
),

flagged as (
    select
        classified.*,
        bool_or(classified.kind = 'deployment_start') over (
            partition by classified.service_id, classified.occur_time
        ) as shares_ms_with_start
    from classified
),

ordered as (
    select
        flagged.*,
        row_number() over (
            partition by flagged.service_id
            order by
                flagged.occur_time,
                case
                    when flagged.is_terminal and flagged.shares_ms_with_start then -1
                    else flagged.sequence_rank
                end,
                flagged.event_info_md5,
                flagged.event_type
        ) as seq
    from flagged
),

final as (
    select
        ordered.*,
        max(ordered.occur_time) filter (where ordered.kind = 'deployment_start') over (
            partition by ordered.service_id order by ordered.seq
        ) as attempt_start
    from ordered
)

select * from final
