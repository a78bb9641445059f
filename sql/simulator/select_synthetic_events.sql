-- Synthetic deployment history (benchmarks and plan tests): the events with occur_time in
-- [start_ms, end_ms) of services 0..services-1 that each start one attempt per UTC day, in the
-- texts of docs/VOCABULARY.md, plus `runtime_events` runtime events per service and day.
-- An attempt starts anywhere in the day (some late enough to cross midnight) and succeeds, or
-- fails at image pulling on one service-day in ten. Rows come in (day, service, time) order, as
-- a day-by-day load stores them.
with service_days as (
    select
        services.n as service_n,
        'svc-' || lpad(services.n::text, 6, '0') as service_id,
        days.day_ms
    from
        generate_series(
            %(start_ms)s::bigint / 86400000 * 86400000 - 86400000,
            %(end_ms)s::bigint - 1,
            86400000
        ) as days (day_ms)
    cross join generate_series(0, %(services)s::integer - 1) as services (n)
),

attempts as (
    select
        service_days.service_n,
        service_days.service_id,
        service_days.day_ms
        + ((service_days.service_n * 7919 + service_days.day_ms / 86400000 * 104729) %% 86000)
        * 1000 as start_ms,
        (service_days.service_n + service_days.day_ms / 86400000) %% 10 = 0 as fails
    from service_days
),

steps as (
    select
        steps.offset_ms,
        steps.event_type,
        steps.event_info,
        steps.when_failing
    from (
        values
        (0, 'normal', 'start to deploy service', null),
        (1000, 'normal', 'preparing environment', null),
        (5000, 'normal', '[m 1.0] prepare environment success', null),
        (6000, 'normal', '[m 1.0] schedule resource success', null),
        (7000, 'normal', '[m 1.0] pulling model image', null),
        (60000, 'normal', '[m 1.0] pull image success', false),
        (61000, 'normal', '[m 1.0] starting model', false),
        (120000, 'normal', '[m 1.0] start model success', false),
        (121000, 'normal', 'service is running', false),
        (60000, 'abnormal', '[m 1.0] pull image failed: image not found', true)
    ) as steps (offset_ms, event_type, event_info, when_failing)
),

attempt_events as (
    select
        attempts.service_n,
        attempts.service_id,
        attempts.start_ms + steps.offset_ms as occur_time,
        steps.event_type,
        steps.event_info
    from attempts
    cross join steps
    where steps.when_failing is null or steps.when_failing = attempts.fails
),

runtime_events as (
    select
        service_days.service_n,
        service_days.service_id,
        service_days.day_ms
        + runtime.k * (86400000 / greatest(%(runtime_events)s::integer, 1))
        + service_days.service_n as occur_time,
        'normal' as event_type,
        'scale service instances from 1 to 2' as event_info
    from service_days
    cross join generate_series(0, %(runtime_events)s::integer - 1) as runtime (k)
),

final as (
    select * from attempt_events
    union all
    select * from runtime_events
)

select
    final.service_id,
    final.occur_time,
    final.event_type,
    final.event_info
from final
where final.occur_time >= %(start_ms)s and final.occur_time < %(end_ms)s
order by final.occur_time / 86400000, final.service_n, final.occur_time
