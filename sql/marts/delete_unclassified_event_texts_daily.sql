-- Remove the scoped services' rows of analytics.unclassified_event_texts_daily on their days before their rebuild.
delete from analytics.unclassified_event_texts_daily as daily
using mart_scope as scope
where
    daily.service_id = scope.service_id
    and daily.event_date >= scope.first_day
    and daily.event_date <= scope.last_day
