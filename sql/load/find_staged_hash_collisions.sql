-- Keys of the stage that carry two different texts under one md5 (a collision inside a chunk).
select
    stage.service_id,
    stage.occur_time,
    count(distinct stage.event_info) as texts
from event_stage as stage
group by stage.service_id, stage.occur_time, md5(stage.event_info)
having count(distinct stage.event_info) > 1
