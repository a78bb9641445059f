-- Stored v2 records per service whose first occurrence (create_at) lies in [start_ms, end_ms).
select
    records.service_id,
    count(*) as records
from service_event_records as records
where records.create_at >= %(start_ms)s and records.create_at < %(end_ms)s
group by records.service_id
