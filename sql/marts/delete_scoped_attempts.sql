-- Remove the scoped attempts' rows of {mart} (each service's from its scope start to the end of its last day) before their rebuild.
delete from {mart} as rebuilt
using mart_scope as scope
where
    rebuilt.service_id = scope.service_id
    and rebuilt.attempt_start >= scope.lo_ms
    and rebuilt.attempt_start < scope.end_ms
