-- Serialize loads whose windows share a UTC day: one transaction-scoped advisory lock per day,
-- taken in ascending order (no deadlock among loads); loads of disjoint days never share a key.
select count(pg_advisory_xact_lock(%(lock_class)s, load_day)) as locked_days
from generate_series(%(first_day)s::integer, %(last_day)s::integer) as load_day
