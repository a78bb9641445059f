-- Count the scoped services' event texts no rule knows on their days, per day, service and text, with the
-- text's shape (alike texts collapsed).
insert into analytics.unclassified_event_texts_daily (
    event_date, service_id, event_info_md5, event_type, event_info, events, first_occurred_at,
    last_occurred_at, text_shape, generation
)
with unknown_events as (
    select
        stage.*,
        (to_timestamp(stage.occur_time / 1000.0) at time zone 'UTC')::date as event_date
    from deployment_event_stage as stage
    inner join mart_scope as scope on stage.service_id = scope.service_id
    where
        stage.kind = 'unknown'
        and stage.occur_time >= scope.first_ms
        and stage.occur_time < scope.end_ms
),

grouped as (
    select
        unknown_events.event_date,
        unknown_events.service_id,
        unknown_events.event_info_md5,
        unknown_events.event_type,
        unknown_events.generation,
        min(unknown_events.event_info) as event_info,
        -- a v2 record: its event_count, from its first to its last occurrence
        sum(unknown_events.occurrences) as events,
        to_timestamp(min(unknown_events.occur_time) / 1000.0) as first_occurred_at,
        to_timestamp(max(unknown_events.last_time) / 1000.0) as last_occurred_at
    from unknown_events
    group by
        unknown_events.event_date,
        unknown_events.service_id,
        unknown_events.event_info_md5,
        unknown_events.event_type,
        unknown_events.generation
),

shaped as (
    -- the first 200 characters only (bounded work on a 1 MB text); quoted parts, uuids, hex ids
    -- of 8+ digits and numbers collapsed; spacing normalised
    select
        grouped.*,
        left(grouped.event_info, 200) as head
    from grouped
),

final as (
    select
        shaped.event_date,
        shaped.service_id,
        shaped.event_info_md5,
        shaped.event_type,
        shaped.event_info,
        shaped.events,
        shaped.first_occurred_at,
        shaped.last_occurred_at,
        btrim(
            regexp_replace(
                regexp_replace(
                    regexp_replace(
                        regexp_replace(
                            regexp_replace(
                                regexp_replace(shaped.head, '''[^'']*''', '''…''', 'g'),
                                '"[^"]*"', '"…"', 'g'
                            ),
                            '[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}',
                            '<id>', 'g'
                        ),
                        '\m[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\M'
                        || '|\m[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\M',
                        '<id>', 'g'
                    ),
                    '[0-9]+', '<n>', 'g'
                ),
                '\s+', ' ', 'g'
            )
        ) as text_shape,
        shaped.generation
    from shaped
)

select * from final
