-- Remove the affected (day, service) rows of the daily mart {mart} before their rebuild.
delete from {mart} as daily
using mart_affected_days as affected
where
    daily.attempt_date = affected.attempt_date
    and daily.service_id = affected.service_id
