-- Per UTC day of the attempts' start and phase: p50 and p95 of the succeeded phases' durations across all services (ms).
with succeeded as (
    select
        phases.attempt_date,
        phases.phase,
        phases.duration_ms
    from analytics.deployment_phases as phases
    where
        phases.attempt_date between %(first_day)s and %(last_day)s
        and phases.status = 'succeeded'
),

final as (
    select
        succeeded.attempt_date,
        succeeded.phase,
        count(*)::integer as phases,
        percentile_cont(0.5) within group (order by succeeded.duration_ms) as p50_ms,
        percentile_cont(0.95) within group (order by succeeded.duration_ms) as p95_ms
    from succeeded
    group by succeeded.attempt_date, succeeded.phase
)

select * from final
order by attempt_date, phase
