-- Rebuild analytics.deployment_phase_durations_daily for the affected (day, service) pairs from the phases.
insert into analytics.deployment_phase_durations_daily (
    attempt_date, service_id, phase, phases, succeeded, failed, in_progress, p50_ms, p90_ms,
    p95_ms, max_ms, generation
)
with affected_phases as (
    select phases.*
    from mart_affected_days as affected
    inner join analytics.deployment_phases as phases
        on
            affected.service_id = phases.service_id
            -- the day (attempt_date is attempt_start's UTC day) as a range of the key
            -- (service_id, attempt_start, ...); an equality on attempt_date would lead the planner
            -- to AND in the date index, every service's phases of the day
            and phases.attempt_start
            >= (affected.attempt_date - date '1970-01-01')::bigint * 86400000
            and phases.attempt_start
            < (affected.attempt_date + 1 - date '1970-01-01')::bigint * 86400000
),

final as (
    select
        affected_phases.attempt_date,
        affected_phases.service_id,
        affected_phases.phase,
        count(*) as phases,
        count(*) filter (where affected_phases.status = 'succeeded') as succeeded,
        count(*) filter (where affected_phases.status = 'failed') as failed,
        count(*) filter (where affected_phases.status = 'in_progress') as in_progress,
        percentile_cont(0.5) within group (
            order by affected_phases.duration_ms
        ) filter (where affected_phases.status = 'succeeded') as p50_ms,
        percentile_cont(0.9) within group (
            order by affected_phases.duration_ms
        ) filter (where affected_phases.status = 'succeeded') as p90_ms,
        percentile_cont(0.95) within group (
            order by affected_phases.duration_ms
        ) filter (where affected_phases.status = 'succeeded') as p95_ms,
        max(affected_phases.duration_ms) filter (
            where affected_phases.status = 'succeeded'
        ) as max_ms,
        affected_phases.generation
    from affected_phases
    group by
        affected_phases.attempt_date,
        affected_phases.service_id,
        affected_phases.phase,
        affected_phases.generation
)

select * from final
