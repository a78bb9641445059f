-- Per UTC day of a range: loaded, not loaded, or unrecoverable (migration 0017).
select
    states.day,
    states.state
from
    day_load_states(
        %(first_day)s::date, %(last_day)s::date, %(first_recoverable_day)s::date
    ) as states
order by states.day
