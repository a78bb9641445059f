-- The most frequent shapes of the texts no rule knows on the given days, with an example and the services emitting them.
with day_texts as (
    select daily.*
    from analytics.unclassified_event_texts_daily as daily
    where daily.event_date = any(%(days)s::date[])
),

final as (
    select
        day_texts.text_shape,
        sum(day_texts.events) as events,
        count(distinct day_texts.service_id) as services,
        left(min(day_texts.event_info), 200) as example
    from day_texts
    group by day_texts.text_shape
)

select * from final
order by events desc, text_shape asc
limit %(limit)s
