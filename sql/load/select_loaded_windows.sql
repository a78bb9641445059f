-- The windows one run has loaded already: a step retry of the run fetches only the others.
with loaded as (
    select
        batches.window_start_ms,
        batches.window_end_ms
    from load_batches as batches
    where
        batches.run_id = %(run_id)s
        and batches.status = 'succeeded'
)

select distinct
    loaded.window_start_ms,
    loaded.window_end_ms
from loaded
