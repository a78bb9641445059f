-- Remove the day's rows of analytics.unclassified_event_texts_daily before their rebuild.
delete from analytics.unclassified_event_texts_daily as daily
where daily.event_date = %(day)s
