"""Counters of what the simulator served, for tests and benchmarks (/_sim/stats)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class ServerStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._faults: Counter[str] = Counter()
        self.pages_served = 0
        self.tokens_issued = 0
        self.temporary_keys_issued = 0
        self.connections = 0

    def count_request(self, kind: str, status: int) -> None:
        with self._lock:
            self._requests[(kind, status)] += 1

    def count_fault(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._faults[kind] += n

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def count_page(self) -> None:
        with self._lock:
            self.pages_served += 1

    def count_token(self) -> None:
        with self._lock:
            self.tokens_issued += 1

    def count_temporary_keys(self) -> None:
        with self._lock:
            self.temporary_keys_issued += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            requests: dict[str, dict[str, int]] = {}
            for (kind, status), n in sorted(self._requests.items()):
                requests.setdefault(kind, {})[str(status)] = n
            return {
                "requests": requests,
                "pages_served": self.pages_served,
                "faults": dict(sorted(self._faults.items())),
                "tokens_issued": self.tokens_issued,
                "temporary_keys_issued": self.temporary_keys_issued,
                "connections": self.connections,
            }
