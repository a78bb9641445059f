-- Remove the affected (day, service) rows of analytics.deployment_failure_causes_daily before their rebuild.
delete from analytics.deployment_failure_causes_daily as daily
using mart_affected_days as affected
where
    daily.attempt_date = affected.attempt_date
    and daily.service_id = affected.service_id
