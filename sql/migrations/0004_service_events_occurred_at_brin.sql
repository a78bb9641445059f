-- A btree on occurred_at cost every loaded row a second index insertion: a fifth of the time of a
-- first load (bench/bench_load.py). A load writes its window's rows as one run of heap pages, so a
-- BRIN index (a min/max per 32 pages) still leads the marts, checks and status queries of a day to
-- that day's pages, and costs next to nothing to maintain. New ranges are summarized as they fill.
drop index if exists service_events_occurred_at_idx;

create index if not exists service_events_occurred_at_brin
on service_events using brin (occurred_at) with (pages_per_range = 32, autosummarize = on);
