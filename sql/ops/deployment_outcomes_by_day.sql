-- Per UTC day of a range: the deployment attempts that started on it, by outcome, all services.
with days as (
    select day::date as day
    from generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') as day
),

outcomes as (
    select
        daily.attempt_date,
        sum(daily.attempts) as attempts,
        sum(daily.succeeded) as succeeded,
        sum(daily.failed) as failed,
        sum(daily.superseded) as superseded,
        sum(daily.in_progress) as in_progress
    from analytics.deployment_outcomes_daily as daily
    where daily.attempt_date between %(first_day)s::date and %(last_day)s::date
    group by daily.attempt_date
),

final as (
    select
        days.day,
        coalesce(outcomes.attempts, 0)::int as attempts,
        coalesce(outcomes.succeeded, 0)::int as succeeded,
        coalesce(outcomes.failed, 0)::int as failed,
        coalesce(outcomes.superseded, 0)::int as superseded,
        coalesce(outcomes.in_progress, 0)::int as in_progress,
        round(
            outcomes.succeeded::numeric / nullif(outcomes.succeeded + outcomes.failed, 0), 3
        )::float as success_rate
    from days
    left join outcomes on days.day = outcomes.attempt_date
)

select * from final
order by day
