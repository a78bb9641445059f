-- The latest loaded version of the event text rules: (version, sha256 of the file, rules).
select
    versions.rule_version,
    versions.checksum,
    versions.rules
from analytics.event_text_rule_versions as versions
order by versions.rule_version desc
limit 1
