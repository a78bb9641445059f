-- Record a new version of the event text rules (the file's sha256 and its rule count).
insert into analytics.event_text_rule_versions (rule_version, checksum, source_file, rules)
values (%(version)s, %(checksum)s, %(source)s, %(rules)s)
