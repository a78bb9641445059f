-- Failed attempts of the range per phase in progress at the failure, most frequent first.
with failed as (
    select
        attempts.service_id,
        attempts.failure_phase
    from analytics.deployment_attempts as attempts
    where
        attempts.attempt_date between %(first_day)s and %(last_day)s
        and attempts.outcome = 'failed'
),

final as (
    select
        coalesce(failed.failure_phase, 'unknown') as failure_phase,
        count(*)::integer as failures,
        count(distinct failed.service_id)::integer as services
    from failed
    group by coalesce(failed.failure_phase, 'unknown')
)

select * from final
order by failures desc, failure_phase asc
