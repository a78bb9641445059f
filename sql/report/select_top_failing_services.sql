-- The services with the most failed attempts in the range, with their attempts and success rate.
with per_service as (
    select
        daily.service_id,
        min(daily.generation) as generation,
        sum(daily.attempts)::integer as attempts,
        sum(daily.succeeded)::integer as succeeded,
        sum(daily.failed)::integer as failed
    from analytics.deployment_outcomes_daily as daily
    where daily.attempt_date between %(first_day)s and %(last_day)s
    group by daily.service_id
),

final as (
    select
        per_service.service_id,
        services.service_name,
        per_service.attempts,
        per_service.succeeded,
        per_service.failed,
        per_service.succeeded::double precision
        / nullif(per_service.succeeded + per_service.failed, 0) as success_rate,
        per_service.generation
    from per_service
    left join services on per_service.service_id = services.service_id
    where per_service.failed > 0
)

select * from final
order by failed desc, service_id asc
limit %(top_services)s
