"""Counters of what the simulator served, for tests and benchmarks (/_sim/stats)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Literal

# What /_sim/stats counts besides requests and faults, under these names.
Served = Literal["pages_served", "tokens_issued", "temporary_keys_issued", "connections"]


class ServerStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._faults: Counter[str] = Counter()
        self._served: Counter[Served] = Counter()

    def count_request(self, kind: str, status: int) -> None:
        with self._lock:
            self._requests[(kind, status)] += 1

    def count_fault(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._faults[kind] += n

    def count_served(self, what: Served) -> None:
        """One more event page, IAM token, temporary key pair or accepted connection."""
        with self._lock:
            self._served[what] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            requests: dict[str, dict[str, int]] = {}
            for (kind, status), n in sorted(self._requests.items()):
                requests.setdefault(kind, {})[str(status)] = n
            served = self._served
            return {
                "requests": requests,
                "pages_served": served["pages_served"],
                "faults": dict(sorted(self._faults.items())),
                "tokens_issued": served["tokens_issued"],
                "temporary_keys_issued": served["temporary_keys_issued"],
                "connections": served["connections"],
            }
