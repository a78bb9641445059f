"""Seeded draws of which fault, if any, a ModelArts request gets."""

from __future__ import annotations

import random
import threading

from pipelines.simulator.config import SimulatorConfig


class FaultDice:
    """One seeded random source behind a lock, shared by all request threads."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def draw_fault(self) -> str | None:
        """A fault kind with probability fault_rate (kinds equally likely), else None."""
        config = self._config
        if config.fault_rate <= 0 or not config.fault_kinds:
            return None
        with self._lock:
            if self._rng.random() >= config.fault_rate:
                return None
            return self._rng.choice(config.fault_kinds)

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def randint(self, low: int, high: int) -> int:
        with self._lock:
            return self._rng.randint(low, high)

    def choice(self, options: tuple[int, ...]) -> int:
        with self._lock:
            return self._rng.choice(options)
