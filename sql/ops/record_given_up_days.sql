-- Record the days the catch-up sensor gives up on (migration 0017); a day recorded stays so.
insert into catchup_given_up_days (day, runs)
select
    given_up.day,
    %(runs)s as runs
from unnest(cast(%(days)s as date[])) as given_up (day)
on conflict (day) do nothing
