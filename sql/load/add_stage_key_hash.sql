-- The key hash on the stage, for the passes that probe stored keys (insert_new_events*.sql): computed
-- once per staged row while the COPY streams, and reused by the fold, the probe and the collision
-- check. Added when the load starts on a window holding events, or when a first load repeats
-- itself (the stage then holds one chunk: rewriting it is cheap).
alter table event_stage
add column if not exists event_info_md5 uuid not null
generated always as (md5(event_info)::uuid) stored
