"""The API's retention horizon in UTC days: the API keeps a service's events for
MODELARTS_RETENTION_DAYS days, so a day wholly older than that is gone for good, and the API
answers it as empty (API.md, "Limits of real regions"). Pure arithmetic: the warehouse says which
days were loaded (sql/migrations/0017), this says which of the others can still be."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pipelines import settings


@dataclass(frozen=True)
class Horizon:
    """The horizon at one moment: the events of [now - retention, now] are still in the API."""

    now: datetime
    retention_days: int

    @property
    def first_recoverable_day(self) -> date:
        """The first UTC day the API still holds, at least in part: every day before it ends at
        or before `now - retention`, i.e. is wholly beyond the horizon."""
        return (self.now.astimezone(UTC) - timedelta(days=self.retention_days)).date()

    def unrecoverable(self, day: date) -> bool:
        """The whole of `day` is older than the horizon (its end is at or before it)."""
        return day < self.first_recoverable_day

    def lost_at(self, day: date) -> datetime:
        """When the last event of `day` falls out of the API: its end plus the retention."""
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        return end + timedelta(days=self.retention_days)

    def time_left(self, day: date) -> timedelta:
        """How long `day` can still be loaded (negative: gone since)."""
        return self.lost_at(day) - self.now.astimezone(UTC)


def current_horizon(now: datetime | None = None) -> Horizon:
    """The horizon now (or at `now`), with MODELARTS_RETENTION_DAYS."""
    return Horizon(now or datetime.now(UTC), settings.retention_days())


def split_days(first: date, last: date, horizon: Horizon) -> tuple[list[date], date | None]:
    """The days of first..last wholly beyond the horizon, and the first day of the range the API
    may still hold (None: none). The days beyond always come first in a range."""
    first_kept = max(first, horizon.first_recoverable_day)
    last_beyond = min(last, first_kept - timedelta(days=1))
    beyond = [first + timedelta(days=i) for i in range((last_beyond - first).days + 1)]
    return beyond, (first_kept if first_kept <= last else None)


def describe_days(days: list[date]) -> str:
    """Days as consecutive runs, e.g. `2026-11-01..2026-11-03, 2026-11-07`: a long gap stays one
    item."""
    spans: list[list[date]] = []
    for day in sorted(days):
        if spans and spans[-1][1] + timedelta(days=1) == day:
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in spans)
