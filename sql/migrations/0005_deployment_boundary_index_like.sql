-- The partial index of deployment boundaries (0003) chose its rows with one regular expression,
-- which Postgres evaluates for every row inserted into service_events: 2.9 s per 1 M simulator
-- events, half of a first load. The same rows chosen with LIKE patterns cost 0.12 s per 1 M
-- (bench/README.md). '[%] pull image failed: %' matches exactly what
-- '^\[.*\] pull image failed: ' did, and so on for each alternative. The predicate must stay
-- identical to the one in sql/marts/stage_mart_scope.sql for the planner to use the index.
drop index if exists service_events_deployment_boundary_idx;

create index if not exists service_events_deployment_boundary_idx
    on service_events (service_id, occur_time)
    where event_info = 'start to deploy service'
    or event_info = 'service is running'
    or event_info like 'deploy service failed: %'
    or event_info like 'model (%) build image failed: %'
    or event_info like '[%] prepare environment failed: %'
    or event_info like '[%] schedule resource failed: %'
    or event_info like '[%] pull image failed: %'
    or event_info like '[%] start model failed: %';
