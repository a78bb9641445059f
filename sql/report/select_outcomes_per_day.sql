-- All services' attempts per UTC day of the range by outcome, and the day's success rate (weighted by attempts).
with outcomes as (
    select
        daily.attempt_date,
        sum(daily.attempts) as attempts,
        sum(daily.succeeded) as succeeded,
        sum(daily.failed) as failed,
        sum(daily.superseded) as superseded,
        sum(daily.in_progress) as in_progress
    from analytics.deployment_outcomes_daily as daily
    where daily.attempt_date between %(first_day)s and %(last_day)s
    group by daily.attempt_date
),

final as (
    select
        days.day,
        coalesce(outcomes.attempts, 0)::integer as attempts,
        coalesce(outcomes.succeeded, 0)::integer as succeeded,
        coalesce(outcomes.failed, 0)::integer as failed,
        coalesce(outcomes.superseded, 0)::integer as superseded,
        coalesce(outcomes.in_progress, 0)::integer as in_progress,
        outcomes.succeeded::double precision
        / nullif(outcomes.succeeded + outcomes.failed, 0) as success_rate
    from days_of_range(%(first_day)s::date, %(last_day)s::date) as days
    left join outcomes on days.day = outcomes.attempt_date
)

select * from final
order by day
