-- Take the queued (service, day) pairs of the pass's days out of mart_rebuild_queue: the rebuild
-- that follows in this transaction covers them, and a rollback puts them back. Rows a load
-- commits after this statement are not taken; they wait for the next rebuild.
create temporary table mart_queued on commit drop as
with consumed as (
    delete from mart_rebuild_queue as queue
    where
        queue.event_date >= %(first_day)s
        and queue.event_date <= %(last_day)s
    returning queue.service_id, queue.event_date
),

final as (
    select distinct
        consumed.service_id,
        consumed.event_date
    from consumed
)

select * from final
