-- Lock the stored rows of the staged records, in id order (no deadlock between loads), so the
-- merge that follows compares against values no other load changes before this one commits.
select count(*) as locked
from (
    select stored.record_id
    from service_event_records as stored
    where stored.record_id in (select staged.record_id from record_stage as staged)
    order by stored.record_id
    for update
) as locked_rows
