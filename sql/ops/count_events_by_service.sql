-- Stored events per service within one window [start_ms, end_ms).
select
    events.service_id,
    count(*) as events
from service_events as events
where events.occur_time >= %(start_ms)s and events.occur_time < %(end_ms)s
group by events.service_id
