-- The latest version of the event text rules, staged once: every step of a rebuild applies the same version.
create temporary table mart_rules on commit drop as
with latest as (
    select max(versions.rule_version) as rule_version
    from analytics.event_text_rule_versions as versions
),

final as (
    select
        rules.rule_version,
        rules.rule_key,
        rules.family,
        rules.priority,
        rules.event_type,
        rules.template,
        rules.role,
        rules.phase,
        rules.cause_category,
        rules.example,
        rules.like_pattern,
        rules.first_char,
        rules.model_from,
        rules.model_until,
        rules.model_until_is_suffix,
        rules.reason_after
    from analytics.event_text_rules as rules
    inner join latest on rules.rule_version = latest.rule_version
)

select * from final
