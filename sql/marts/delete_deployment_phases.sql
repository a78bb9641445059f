-- Remove the phases of the scoped attempts before their rebuild.
delete from analytics.deployment_phases as phases
using mart_scope as scope
where
    phases.service_id = scope.service_id
    and phases.attempt_start >= scope.lo_ms
    and phases.attempt_start < scope.end_ms
