-- Distinct event keys in the stage: what this load holds once in-window duplicates fold.
select count(*) as staged_distinct
from (
    select distinct stage.service_id, stage.occur_time, md5(stage.event_info) as event_info_md5
    from event_stage as stage
) as staged_keys
