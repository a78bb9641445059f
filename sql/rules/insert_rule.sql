-- One rule of a version of the event text rules, compiled (pipelines/warehouse/rules.py).
insert into analytics.event_text_rules (
    rule_version, rule_key, family, priority, event_type, template, role, phase, cause_category,
    example, like_pattern, first_char, model_from, model_until, model_until_is_suffix,
    reason_after
)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
