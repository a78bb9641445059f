-- Per UTC day of a range: the event text rule version of the day's last mart rebuild, and its rule coverage.
select
    coverage.event_date,
    coverage.rule_version,
    coverage.event_coverage
from analytics.event_text_coverage_daily as coverage
where coverage.event_date between %(first_day)s::date and %(last_day)s::date
order by coverage.event_date
