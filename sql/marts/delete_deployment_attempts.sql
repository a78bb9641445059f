-- Remove the scoped attempts (each service's attempts from its scope start to the end of its last day) before their rebuild.
delete from analytics.deployment_attempts as attempts
using mart_scope as scope
where
    attempts.service_id = scope.service_id
    and attempts.attempt_start >= scope.lo_ms
    and attempts.attempt_start < scope.end_ms
