-- Failed attempts of the range per normalised cause, with the services they hit, most frequent first.
with causes as (
    select
        daily.failure_cause,
        sum(daily.failures)::integer as failures,
        count(distinct daily.service_id)::integer as services
    from analytics.deployment_failure_causes_daily as daily
    where daily.attempt_date between %(first_day)s and %(last_day)s
    group by daily.failure_cause
),

final as (
    select
        causes.failure_cause,
        causes.failures,
        causes.services
    from causes
    where causes.failures > 0
)

select * from final
order by failures desc, failure_cause asc
