"""How much of the data the event text rules explain, per day (analytics.event_text_coverage_daily),
and the texts they do not know yet (analytics.unclassified_event_texts_daily, by shape)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from pipelines.warehouse.marts import query_check


@dataclass(frozen=True)
class DayCoverage:
    day: date
    rule_version: int | None
    events: int
    unclassified_events: int
    unknown_texts: int
    attempts: int
    unexplained_attempts: int
    unclassified_failures: int
    unknown_cause_failures: int
    event_coverage: float | None  # None: no events (or the day was never rebuilt)
    attempt_coverage: float | None  # None: no attempts started that day

    def below(self, threshold: float) -> bool:
        """Whether the rules explain less than `threshold` of the day's events or attempts."""
        shares = (self.event_coverage, self.attempt_coverage)
        return any(share is not None and share < threshold for share in shares)


@dataclass(frozen=True)
class UnmatchedText:
    shape: str
    events: int
    services: int
    example: str


def coverage_of_days(engine: Engine, days: Sequence[date]) -> list[DayCoverage]:
    """One row per day (oldest first); a day never rebuilt shows zeros and no coverage."""
    rows = query_check(engine, "unclassified_share", {"days": sorted(set(days))})
    return [DayCoverage(*row) for row in rows]


def top_unmatched_texts(
    engine: Engine, days: Sequence[date], limit: int = 10
) -> list[UnmatchedText]:
    """The most frequent shapes of unknown texts on the days, most frequent first."""
    rows = query_check(engine, "top_unmatched_texts", {"days": sorted(set(days)), "limit": limit})
    return [UnmatchedText(str(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]
