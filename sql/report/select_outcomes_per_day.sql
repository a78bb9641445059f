-- All services' attempts per UTC day of the range by outcome, and the day's success rate (weighted by attempts); the new-version (v2) share of them.
with outcomes as (
    select
        daily.attempt_date,
        sum(daily.attempts) as attempts,
        sum(daily.succeeded) as succeeded,
        sum(daily.failed) as failed,
        sum(daily.superseded) as superseded,
        sum(daily.in_progress) as in_progress,
        sum(daily.attempts) filter (where daily.generation = 'v2') as v2_attempts,
        sum(daily.succeeded) filter (where daily.generation = 'v2') as v2_succeeded,
        sum(daily.failed) filter (where daily.generation = 'v2') as v2_failed
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
        / nullif(outcomes.succeeded + outcomes.failed, 0) as success_rate,
        coalesce(outcomes.v2_attempts, 0)::integer as v2_attempts,
        outcomes.v2_succeeded::double precision
        / nullif(outcomes.v2_succeeded + outcomes.v2_failed, 0) as v2_success_rate
    from days_of_range(%(first_day)s::date, %(last_day)s::date) as days
    left join outcomes on days.day = outcomes.attempt_date
)

select * from final
order by day
