"""Which days the catch-up sensor requests: every day inside the retention horizon without a
successful load, as few range runs of the nightly job as the API pool lets run at once.

Pure planning over what the warehouse says is loaded (sql/migrations/0017) and what the Dagster
instance says about the nightly job's runs: a day covered by a queued or running run is left to
it; a day is retried alone once a run covering it ended without loading it (so a day that fails
for good cannot keep its neighbours out), and given up after MAX_ATTEMPTS such runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pipelines import run_tags

# Runs that ended without loading a day, after which the sensor stops asking for it (the alert
# webhook and `modelarts-etl status` say so; `modelarts-etl rerun DAY` still loads it by hand).
MAX_ATTEMPTS = 3
# The alert webhook warns when a day not loaded yet falls out of the horizon within this time.
WARN_BEFORE = timedelta(days=3)
# After a nightly tick, its days are the nightly run's: the sensor leaves them to it this long,
# so that the two never request the same days while the scheduler submits its run.
NIGHTLY_GRACE = timedelta(minutes=10)
# The trigger tag of the runs the sensor requests (run_tags.TRIGGER).
TRIGGER = "catchup"


@dataclass(frozen=True)
class DayRange:
    first: date
    last: date
    attempt: int  # 1 for days no run tried yet; n + 1 after n runs ended without them

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def run_key(self) -> str:
        """One run per range and attempt, whatever the number of sensor evaluations."""
        return f"catchup-{self.first.isoformat()}-{self.last.isoformat()}-attempt{self.attempt}"

    def tags(self) -> dict[str, str]:
        return {
            run_tags.PARTITION_RANGE_START: self.first.isoformat(),
            run_tags.PARTITION_RANGE_END: self.last.isoformat(),
            run_tags.TRIGGER: TRIGGER,
        }


@dataclass(frozen=True)
class RunDays:
    """The days the nightly job's runs cover: those of runs queued or running, how many ended
    runs covered each day, and how many catch-up runs are queued or running."""

    in_flight: frozenset[date] = frozenset()
    ended: Mapping[date, int] = field(default_factory=dict)
    catchup_in_flight: int = 0


def run_days_of(tags: Mapping[str, str]) -> list[date]:
    """The days a run of the nightly job covers, from its partition (range) tags."""
    start = tags.get(run_tags.PARTITION_RANGE_START) or tags.get(run_tags.PARTITION)
    end = tags.get(run_tags.PARTITION_RANGE_END) or tags.get(run_tags.PARTITION)
    if not start or not end:
        return []
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        return []
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def tally_runs(runs: Iterable[tuple[Mapping[str, str], bool]]) -> RunDays:
    """RunDays of (tags, in flight) per run of the nightly job."""
    in_flight: set[date] = set()
    ended: Counter[date] = Counter()
    catchup = 0
    for tags, running in runs:
        days = run_days_of(tags)
        if running:
            in_flight.update(days)
            catchup += tags.get(run_tags.TRIGGER) == TRIGGER
        else:
            ended.update(days)
    return RunDays(frozenset(in_flight), dict(ended), catchup)


@dataclass(frozen=True)
class Plan:
    requests: list[DayRange]
    given_up: list[date]  # tried MAX_ATTEMPTS times: no longer requested
    waiting: list[date]  # due, but no free slot in this evaluation


def plan_catchup(missing: Sequence[date], runs: RunDays, slots: int) -> Plan:
    """Requests for the days of `missing` (not loaded, still in the API, the sensor's to load):
    days no run tried in ranges of consecutive days, days a run ended without one at a time;
    oldest first (the nearest to falling out of the horizon), at most `slots` runs in flight."""
    due = sorted(d for d in set(missing) if d not in runs.in_flight)
    given_up = [d for d in due if runs.ended.get(d, 0) >= MAX_ATTEMPTS]
    ranges: list[DayRange] = []
    for day in due:
        tried = runs.ended.get(day, 0)
        if tried >= MAX_ATTEMPTS:
            continue
        previous = ranges[-1] if ranges else None
        if (
            tried == 0
            and previous is not None
            and previous.attempt == 1
            and previous.last + timedelta(days=1) == day
        ):
            ranges[-1] = DayRange(previous.first, day, 1)
        else:
            ranges.append(DayRange(day, day, tried + 1))
    free = max(0, slots - runs.catchup_in_flight)
    requested = ranges[:free]
    waiting = [d for r in ranges[free:] for d in r.days()]
    return Plan(requested, given_up, waiting)


def sensor_days(
    first_recoverable: date,
    partitions_start: date,
    latest_tick: datetime | None,
    nightly_range: tuple[date, date] | None,
    now: datetime,
) -> tuple[date, date] | None:
    """The days the sensor may request: from the first day both the API and the partitions hold
    to the last day the latest nightly tick covered (later days are the next tick's), less that
    tick's own days for NIGHTLY_GRACE after it. None: no day."""
    if latest_tick is None or nightly_range is None:
        return None
    first = max(first_recoverable, partitions_start)
    last = nightly_range[1]
    if now - latest_tick < NIGHTLY_GRACE:
        last = min(last, nightly_range[0] - timedelta(days=1))
    return (first, last) if first <= last else None
