-- The latest version of the event text rules, staged once: every step of a rebuild applies the same version.
create temporary table mart_rules on commit drop as
with latest as (
    select max(versions.rule_version) as rule_version
    from analytics.event_text_rule_versions as versions
),

final as (
    select rules.*
    from analytics.event_text_rules as rules
    inner join latest on rules.rule_version = latest.rule_version
)

select * from final
