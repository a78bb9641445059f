-- The scoped events of both generations in one shape, classified by the event text rules
-- (mart_rules), ordered and assigned to attempts: v1 events (service_events) and v2 records
-- (deployment_record_stage, which assigns each record to its version's attempt). Everything after
-- this file (phases, attempts, daily marts, coverage) reads this one shape, whatever the source.
-- v1: in one millisecond events follow the deployment sequence (start, build, environment,
-- scheduling, pulling, startup, terminal), except that a terminal event sharing its millisecond
-- with a start closes the previous attempt: an attempt cannot end in the millisecond it starts; an
-- attempt runs from a start to the next. v2: the events of a version follow its start, in the
-- same sequence; the version is the attempt.
create temporary table deployment_event_stage on commit drop as
with v1_events as (
    select
        events.service_id,
        'v1' as generation,
        null::bigint as version_start,
        events.occur_time,
        events.occur_time as last_time,
        events.event_type,
        events.event_info,
        events.event_info_md5,
        1::bigint as occurrences
    from mart_scope as scope
    cross join lateral (
        -- one index range per service: (service_id, occur_time) of the table's key. OFFSET 0
        -- keeps this a subquery run once per service: flattened into a join, it lets the planner
        -- hash all of service_events on service_id when it misjudges how many rows the ranges
        -- select (issue 23: 7.8 M rows read for 30 k).
        select service_events.*
        from service_events
        where
            scope.generation = 'v1'
            and service_events.service_id = scope.service_id
            and service_events.occur_time >= scope.lo_ms
            and service_events.occur_time < coalesce(scope.hi_ms, 9223372036854775807)
        offset 0 -- noqa: AM09
    ) as events
),

scoped as (
    select * from v1_events

    union all

    select
        records.service_id,
        'v2' as generation,
        records.attempt_start as version_start,
        records.occur_time,
        records.last_time,
        records.event_type,
        records.event_info,
        records.event_info_md5,
        records.occurrences
    from deployment_record_stage as records
),

texts as (
    -- each distinct text once: rules are matched per text, not per event
    select
        scoped.event_info_md5,
        scoped.event_type,
        min(scoped.event_info) as event_info
    from scoped
    group by scoped.event_info_md5, scoped.event_type
),

candidates_first_try as (
    -- the rules (sql/rules/event_text_rules.tsv) of the text's first character, by a hash join;
    -- then LIKE decides. No regular expression: a capturing regex costs ~0.15 ms per text. A
    -- left join: a text no rule matches stays, once, with a null rule_key (no anti-join, which
    -- the planner runs as a nested loop over texts x matches when it underestimates the texts)
    select
        texts.event_info_md5,
        texts.event_type,
        texts.event_info as matched_text,
        rules.rule_key,
        rules.priority
    from texts
    left join mart_rules as rules
        on
            left(texts.event_info, 1) = rules.first_char
            and texts.event_info like rules.like_pattern
            and (rules.event_type is null or texts.event_type = rules.event_type)
),

matches as (
    select candidates_first_try.*
    from candidates_first_try
    where candidates_first_try.rule_key is not null
),

unmatched as (
    -- a second try for the few texts no rule matched: U+FFFD (a NUL or lone surrogate repaired
    -- on load) removed, runs of whitespace (unicode spaces too) collapsed to one space, trimmed
    select
        candidates_first_try.event_info_md5,
        candidates_first_try.event_type,
        btrim(
            regexp_replace(
                replace(candidates_first_try.matched_text, chr(65533), ''),
                '[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+',
                ' ',
                'g'
            )
        ) as event_info
    from candidates_first_try
    where candidates_first_try.rule_key is null
),

retried as (
    select
        unmatched.event_info_md5,
        unmatched.event_type,
        unmatched.event_info as matched_text,
        rules.rule_key,
        rules.priority
    from unmatched
    inner join mart_rules as rules on left(unmatched.event_info, 1) = rules.first_char
    where
        unmatched.event_info like rules.like_pattern
        and (rules.event_type is null or unmatched.event_type = rules.event_type)
),

best as (
    -- the lowest priority wins, then the rule key
    select distinct on (candidates.event_info_md5, candidates.event_type) candidates.*
    from (
        select * from matches
        union all
        select * from retried
    ) as candidates
    order by
        candidates.event_info_md5,
        candidates.event_type,
        candidates.priority,
        candidates.rule_key
),

classified_texts as (
    -- captures by position: the model label runs from model_from to model_until (its first
    -- occurrence, or the template's suffix); the reason follows reason_after. The rule's
    -- attributes are read here, once per classified text, not carried through both tries
    select
        best.event_info_md5,
        best.event_type,
        best.rule_key,
        rules.role,
        rules.phase,
        rules.cause_category,
        case
            when rules.model_from is null then null
            when rules.model_until_is_suffix
                then substr(
                    best.matched_text,
                    rules.model_from,
                    length(best.matched_text) - rules.model_from + 1 - length(rules.model_until)
                )
            else substr(
                best.matched_text,
                rules.model_from,
                strpos(substr(best.matched_text, rules.model_from), rules.model_until) - 1
            )
        end as model,
        case
            when rules.reason_after is not null
                then substr(
                    best.matched_text,
                    strpos(best.matched_text, rules.reason_after) + length(rules.reason_after)
                )
        end as reason
    from best
    inner join mart_rules as rules on best.rule_key = rules.rule_key
),

parsed as (
    select
        scoped.*,
        texts.rule_key,
        case texts.role
            when 'start' then 'deployment_start'
            when 'phase_begin' then 'phase_start'
            when 'phase_success' then 'phase_succeeded'
            when 'failure'
                then
                    case when texts.phase is null then 'deployment_failure' else 'phase_failed' end
            when 'success' then 'running'
            when 'waiting' then 'waiting'
            when 'runtime' then 'runtime'
            when 'other' then 'runtime'
            else 'unknown'
        end as kind,
        texts.phase,
        texts.model,
        texts.reason,
        texts.cause_category
    from scoped
    left join classified_texts as texts
        on
            scoped.event_info_md5 = texts.event_info_md5
            and scoped.event_type = texts.event_type
),

classified as (
    select
        parsed.service_id,
        parsed.generation,
        parsed.version_start,
        parsed.occur_time,
        parsed.last_time,
        parsed.occurrences,
        parsed.event_type,
        parsed.event_info,
        parsed.event_info_md5,
        parsed.rule_key,
        parsed.kind,
        parsed.phase,
        parsed.model,
        parsed.reason,
        parsed.cause_category,
        parsed.kind in ('phase_failed', 'deployment_failure', 'running') as is_terminal,
        case parsed.kind
            when 'deployment_start' then 0
            when 'deployment_failure' then 60
            when 'running' then 61
            when 'runtime' then 70
            when 'unknown' then 70
            else
                coalesce(
                    case parsed.phase
                        when 'image_building' then 10
                        when 'environment_preparation' then 20
                        when 'resource_scheduling' then 30
                        when 'image_pulling' then 40
                        when 'model_startup' then 50
                    end
                    + case parsed.kind
                        when 'phase_succeeded' then 1
                        when 'phase_failed' then 2
                        else 0
                    end,
                    70
                )
        end as sequence_rank
    from parsed
),

flagged as (
    select
        classified.*,
        classified.generation = 'v1'
        and bool_or(classified.kind = 'deployment_start') over (
            partition by classified.service_id, classified.occur_time
        ) as shares_ms_with_start
    from classified
),

ordered as (
    -- one window, one sort: the sequence number and, v1, the last start up to the event (its
    -- attempt), over the same rows in the same order (a ROWS frame: the rows numbered up to it)
    select
        flagged.*,
        row_number() over by_sequence as seq,
        max(flagged.occur_time) filter (
            where flagged.kind = 'deployment_start'
        ) over by_sequence as last_start
    from flagged
    window by_sequence as (
        partition by flagged.service_id
        order by
            -- v2: version by version (startless versions at their own time), then in time
            coalesce(flagged.version_start, flagged.occur_time),
            flagged.occur_time,
            case
                when flagged.is_terminal and flagged.shares_ms_with_start then -1
                else flagged.sequence_rank
            end,
            flagged.event_info_md5,
            flagged.event_type
        rows between unbounded preceding and current row
    )
),

final as (
    select
        ordered.service_id,
        ordered.generation,
        ordered.version_start,
        ordered.occur_time,
        ordered.last_time,
        ordered.occurrences,
        ordered.event_type,
        ordered.event_info,
        ordered.event_info_md5,
        ordered.rule_key,
        ordered.kind,
        ordered.phase,
        ordered.model,
        ordered.reason,
        ordered.cause_category,
        ordered.is_terminal,
        ordered.sequence_rank,
        ordered.shares_ms_with_start,
        ordered.seq,
        case
            when ordered.generation = 'v2' then ordered.version_start
            else ordered.last_start
        end as attempt_start
    from ordered
)

select * from final
