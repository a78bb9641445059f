-- One definition of two things the marts read service_events by (issue 21), which the SQL files
-- wrote out each time: the texts that start or end a deployment attempt (the predicate of the
-- partial index below, written again three times in sql/marts/stage_mart_scope.sql) and the skip
-- from one stored service to the next (sql/load/queue_mart_rebuild.sql,
-- sql/marts/stage_mart_services.sql). Plain SQL functions: the planner inlines them, in the
-- statements and in the index predicate alike, so the statements' plans do not change (a
-- statement's condition still implies the index predicate, tests/integration/test_marts_plans.py).
-- Changing either text function changes what the index holds: a migration that replaces one
-- must rebuild service_events_deployment_boundary_idx in the same file (reindex index ...);
-- tests/integration/test_event_text_rules.py fails when a start, success or failure rule's
-- example falls outside is_deployment_boundary.

-- The starts of an attempt, both rule families (sql/rules/event_text_rules.tsv, role start).
create or replace function is_deployment_start(event_info text) returns boolean
language sql immutable parallel safe
return event_info in ('start to deploy service', 'The service starts to deploy.');

-- Starts, successes and failures of both rule families: the texts that bound attempts, the same
-- as migration 0008's index predicate (LIKE only: evaluated for every row inserted into
-- service_events, migration 0005).
create or replace function is_deployment_boundary(event_info text) returns boolean
language sql immutable parallel safe
return (
    is_deployment_start(event_info)
    or event_info = 'service is running'
    or event_info like any(array[
        'deploy service failed: %',
        'model (%) build image failed: %',
        '[%] prepare environment failed: %',
        '[%] schedule resource failed: %',
        '[%] pull image failed: %',
        '[%] start model failed: %',
        'Service % started.',
        'Service % failed. Error: %',
        'Service deployment timed out. Error: %',
        'Failed to create model image %. Error: %',
        'Failed to start service %. Error: %',
        'Insufficient %. The scheduling failed. Supplementary information: %'
    ])
);

comment on function is_deployment_boundary(text) is
'Whether an event text starts or ends a deployment attempt: the predicate of the partial index '
'service_events_deployment_boundary_idx. Replace it only with a reindex of that index.';

-- The same rows as migration 0008's index, chosen by the function.
drop index if exists service_events_deployment_boundary_idx;

create index if not exists service_events_deployment_boundary_idx
on service_events (service_id, occur_time)
where is_deployment_boundary(event_info);

-- The distinct services of service_events, one probe of the key index (service_id, occur_time,
-- ...) per service: a skip from one to the next. Not a scan of the table nor of the BRIN index of
-- occurred_at (whose ranges widen wherever a load fills free space a vacuum left in old pages).
create or replace function stored_service_ids() returns table (service_id text)
language sql stable parallel safe
begin atomic
    with recursive service_ids as (
        (
            select events.service_id
            from service_events as events
            order by events.service_id
            limit 1
        )

        union all

        select next_id.service_id
        from service_ids
        cross join lateral (
            select events.service_id
            from service_events as events
            where events.service_id > service_ids.service_id
            order by events.service_id
            limit 1
        ) as next_id
    )

    select service_ids.service_id from service_ids;
end;
