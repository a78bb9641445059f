"""The time window: the unit that extraction, loading and the marts share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open window [start_ms, end_ms) in epoch milliseconds UTC."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"empty window [{self.start_ms}, {self.end_ms})")

    def contains(self, occur_time: int) -> bool:
        return self.start_ms <= occur_time < self.end_ms

    def __str__(self) -> str:
        return f"[{self.start_ms}, {self.end_ms}) = [{_iso(self.start_ms)}, {_iso(self.end_ms)})"


def day_start_ms(day: date) -> int:
    """Epoch milliseconds of the UTC day's start."""
    return (day - date(1970, 1, 1)).days * DAY_MS


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
