-- The scoped events, parsed by the deployment vocabulary (docs/VOCABULARY.md), ordered and assigned to attempts.
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
    cross join lateral (
        -- one index range per service: (service_id, occur_time) of the table's key. OFFSET 0
        -- keeps this a subquery run once per service: flattened into a join, it lets the planner
        -- hash all of service_events on service_id when it misjudges how many rows the ranges
        -- select (issue 23: 7.8 M rows read for 30 k).
        select service_events.*
        from service_events
        where
            service_events.service_id = scope.service_id
            and service_events.occur_time >= scope.lo_ms
            and service_events.occur_time < coalesce(scope.hi_ms, 9223372036854775807)
        offset 0
    ) as events
),

parsed as (
    -- plain string tests, no regular expressions on the hot path: a capturing regex costs
    -- ~0.15 ms per event, string functions ~1 µs. Labels are the text between the delimiters;
    -- in failures, up to the first delimiter (the reason is free text).
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
            when
                left(scoped.event_info, 29) = 'scale service instances from '
                and scoped.event_info ~ '^scale service instances from [0-9]+ to [0-9]+$'
                then array['runtime', null, null]
            when left(scoped.event_info, 23) = 'deploy service failed: '
                then array['deployment_failure', null, null]
            when
                left(scoped.event_info, 26) = 'building image for model ['
                and right(scoped.event_info, 1) = ']'
                then array[
                    'phase_start', 'image_building',
                    substr(scoped.event_info, 27, length(scoped.event_info) - 27)
                ]
            when
                left(scoped.event_info, 7) = 'model ('
                and strpos(scoped.event_info, ') build image failed: ') > 0
                then array[
                    'phase_failed', 'image_building',
                    substr(scoped.event_info, 8, strpos(scoped.event_info, ') build image failed: ') - 8)
                ]
            when
                left(scoped.event_info, 7) = 'model ('
                and right(scoped.event_info, 21) = ') build image success'
                then array[
                    'phase_succeeded', 'image_building',
                    substr(scoped.event_info, 8, length(scoped.event_info) - 28)
                ]
            when
                left(scoped.event_info, 1) = '['
                and strpos(scoped.event_info, '] prepare environment failed: ') > 0
                then array[
                    'phase_failed', 'environment_preparation',
                    substr(scoped.event_info, 2, strpos(scoped.event_info, '] prepare environment failed: ') - 2)
                ]
            when
                left(scoped.event_info, 1) = '['
                and strpos(scoped.event_info, '] schedule resource failed: ') > 0
                then array[
                    'phase_failed', 'resource_scheduling',
                    substr(scoped.event_info, 2, strpos(scoped.event_info, '] schedule resource failed: ') - 2)
                ]
            when
                left(scoped.event_info, 1) = '['
                and strpos(scoped.event_info, '] pull image failed: ') > 0
                then array[
                    'phase_failed', 'image_pulling',
                    substr(scoped.event_info, 2, strpos(scoped.event_info, '] pull image failed: ') - 2)
                ]
            when
                left(scoped.event_info, 1) = '['
                and strpos(scoped.event_info, '] start model failed: ') > 0
                then array[
                    'phase_failed', 'model_startup',
                    substr(scoped.event_info, 2, strpos(scoped.event_info, '] start model failed: ') - 2)
                ]
            when
                left(scoped.event_info, 1) = '['
                and right(scoped.event_info, 29) = '] prepare environment success'
                then array[
                    'phase_succeeded', 'environment_preparation',
                    substr(scoped.event_info, 2, length(scoped.event_info) - 30)
                ]
            when
                left(scoped.event_info, 1) = '['
                and right(scoped.event_info, 27) = '] schedule resource success'
                then array[
                    'phase_succeeded', 'resource_scheduling',
                    substr(scoped.event_info, 2, length(scoped.event_info) - 28)
                ]
            when
                left(scoped.event_info, 1) = '['
                and right(scoped.event_info, 21) = '] pulling model image'
                then array[
                    'phase_start', 'image_pulling',
                    substr(scoped.event_info, 2, length(scoped.event_info) - 22)
                ]
            when
                left(scoped.event_info, 1) = '['
                and right(scoped.event_info, 20) = '] pull image success'
                then array[
                    'phase_succeeded', 'image_pulling',
                    substr(scoped.event_info, 2, length(scoped.event_info) - 21)
                ]
            when
                left(scoped.event_info, 1) = '['
                and right(scoped.event_info, 16) = '] starting model'
                then array[
                    'phase_start', 'model_startup',
                    substr(scoped.event_info, 2, length(scoped.event_info) - 17)
                ]
            when
                left(scoped.event_info, 1) = '['
                and right(scoped.event_info, 21) = '] start model success'
                then array[
                    'phase_succeeded', 'model_startup',
                    substr(scoped.event_info, 2, length(scoped.event_info) - 22)
                ]
            when
                left(scoped.event_info, 1) = '['
                and right(scoped.event_info, 33) = '] instance restarted unexpectedly'
                then array[
                    'runtime', null,
                    substr(scoped.event_info, 2, length(scoped.event_info) - 34)
                ]
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
