-- Three lookups the SQL files wrote out more than once (issue 21): the last deployment boundary
-- of a service before a time (twice in sql/marts/stage_mart_scope.sql), the days of a range
-- (sql/report/*_per_day.sql, sql/ops/partition_status.sql) and the events stored per UTC day of
-- a range (sql/ops/partition_status.sql, sql/report/select_rule_coverage_per_day.sql). Plain SQL
-- functions, as in migration 0010: the planner inlines them into the statements that call them,
-- whose plans are those of the text they replace (tests/integration/test_marts_plans.py), and a
-- column a caller does not read is not computed. A parameter is named with its function's name
-- (function.parameter), which sqlfluff takes for a table it cannot find (RF01).
-- noqa: disable=RF01

-- The boundary (is_deployment_boundary, migration 0010) of the service last before before_ms, and
-- whether it is a start: one probe of the partial index service_events_deployment_boundary_idx.
create or replace function last_deployment_boundary(service_id text, before_ms bigint)
returns table (occur_time bigint, is_start boolean)
language sql stable parallel safe
begin atomic
    select
        events.occur_time,
        is_deployment_start(events.event_info) as is_start
    from service_events as events
    where
        events.service_id = last_deployment_boundary.service_id
        and events.occur_time < last_deployment_boundary.before_ms
        and is_deployment_boundary(events.event_info)
    -- in one millisecond a terminal event closes the previous attempt before a start opens one
    order by events.occur_time desc, is_start desc
    limit 1;
end;

-- The days first_day..last_day, one row each.
create or replace function days_of_range(first_day date, last_day date) returns table (day date)
language sql immutable parallel safe
begin atomic
    select days_of_range.first_day + offsets.n as day
    from generate_series(0, days_of_range.last_day - days_of_range.first_day) as offsets (n);
end;

-- Per UTC day of first_day..last_day that has events in service_events: its events and the
-- services they came from. The bounds are timestamps of occurred_at (its BRIN index), not a
-- function of it.
create or replace function stored_events_per_day(first_day date, last_day date)
returns table (day date, events bigint, services bigint)
language sql stable parallel safe
begin atomic
    select
        (events.occurred_at at time zone 'UTC')::date as day,
        count(*) as events,
        count(distinct events.service_id) as services
    from service_events as events
    where
        events.occurred_at >= stored_events_per_day.first_day::timestamp at time zone 'UTC'
        and events.occurred_at
        < (stored_events_per_day.last_day + 1)::timestamp at time zone 'UTC'
    group by (events.occurred_at at time zone 'UTC')::date;
end;
