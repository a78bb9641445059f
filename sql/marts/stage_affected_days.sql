-- The (service, UTC day) pairs whose daily marts change: days of the attempts replaced or rebuilt.
create temporary table mart_affected_days on commit drop as
with replaced as (
    select
        attempts.service_id,
        attempts.attempt_date
    from analytics.deployment_attempts as attempts
    inner join mart_scope as scope
        on
            attempts.service_id = scope.service_id
            and attempts.attempt_start >= scope.lo_ms
            and attempts.attempt_start < scope.end_ms
),

rebuilt as (
    select
        stage.service_id,
        stage.attempt_date
    from deployment_attempt_stage as stage
),

final as (
    select
        replaced.service_id,
        replaced.attempt_date
    from replaced
    union
    select
        rebuilt.service_id,
        rebuilt.attempt_date
    from rebuilt
)

select * from final
