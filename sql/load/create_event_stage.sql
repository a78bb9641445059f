-- Session-local staging table that a load COPYs into before the insert into service_events, when
-- the window already holds events (a first load COPYs straight into service_events). The key hash
-- is computed by the pass that reads it (insert_new_events.sql), not while the COPY streams: the
-- loading thread then spends less time feeding the COPY.
create temporary table if not exists event_stage (
    service_id text not null,
    occur_time bigint not null,
    event_type text not null,
    event_info text not null,
    load_batch_id bigint not null  -- the rows are COPYed as they would go into service_events
) on commit drop
