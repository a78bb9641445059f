-- How often a load's requests were refused for the user's quota (429 APIG.0308/APIGW.0308) and
-- waited out under the process's shared rate limiter. Throttling is not a failure: these
-- sends were not taken from the retry budget, and are not counted in `retries`.
alter table load_batches add column if not exists throttled integer not null default 0;

comment on column load_batches.throttled is
'Requests the gateway refused for the user''s quota (429), waited out and sent again.';
