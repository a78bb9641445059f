"""Thread-safe counters of one extraction, reported in audit rows and Dagster metadata."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class ExtractionStats:
    services: int = 0
    services_missing: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    token_refreshes: int = 0
    windows_split: int = 0
    fetched: int = 0
    out_of_window: int = 0
    quarantined: int = 0
    unknown_event_types: int = 0
    repaired: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {
                f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")
            }
