"""The marts of each day rebuilt inside the load step, as soon as the day's loads commit, while
the later days still load: the marts step that follows then has only what is left.

A day is ready when this run has a succeeded load of it for every generation the step loads
(load_batches, by the day's window: the lookback window before the first day is not a day). A
thread looks for ready days every `poll_s` and rebuilds them (`rebuild_marts`: the days asked,
and whatever the loads queued meanwhile) in the marts' own locked snapshot, so a load committing
during a pass is seen wholly or not at all; what a pass did not see stays queued for the next
one. When the loads end, the days ready by then are rebuilt before the step returns. A pass
that fails is logged (info) and leaves its days to the marts step, which rebuilds every day not
listed here; the load step's result does not depend on the marts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType

from sqlalchemy import Engine

from pipelines.warehouse.marts import rebuild_marts
from pipelines.warehouse.transactions import transaction
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

# How often the thread looks for days whose loads committed.
POLL_S = 0.25

# The metadata key of service_events' materializations that lists the days rebuilt in the step.
REBUILT_IN_LOAD_STEP = "marts_rebuilt_days"
# ... and the attempt days those passes changed (the marts step's checks cover them)
AFFECTED_IN_LOAD_STEP = "marts_affected_days"


@dataclass
class StepMarts:
    """Days whose marts the load step rebuilt, and what those passes changed."""

    rebuilt: list[date] = field(default_factory=list)
    affected: set[date] = field(default_factory=set)
    passes: int = 0
    seconds: float = 0.0
    failed: str = ""

    def as_metadata(self) -> dict[str, int | float | str]:
        return {
            REBUILT_IN_LOAD_STEP: ", ".join(d.isoformat() for d in sorted(self.rebuilt)),
            AFFECTED_IN_LOAD_STEP: ", ".join(d.isoformat() for d in sorted(self.affected)),
            "marts_passes_in_load_step": self.passes,
            "marts_seconds_in_load_step": round(self.seconds, 3),
            **({"marts_in_load_step_failed": self.failed} if self.failed else {}),
        }


def days_of(text: str) -> set[date]:
    """The days of a metadata text of `StepMarts.as_metadata`."""
    return {date.fromisoformat(part) for part in text.split(", ") if part}


class MartsAsDaysCommit:
    """Rebuild each day's marts once its loads of `generations` by run `run_id` committed.

    `loads` reads load_batches (the loader's engine), `marts` rebuilds (the transformer's).
    """

    def __init__(
        self,
        loads: Engine,
        marts: Engine,
        run_id: str,
        days: Sequence[tuple[date, TimeWindow]],
        generations: Sequence[str],
        poll_s: float = POLL_S,
    ):
        self._loads = loads
        self._marts = marts
        self._run_id = run_id
        self._windows = {(w.start_ms, w.end_ms): day for day, w in days}
        self._generations = set(generations)
        self._enabled = bool(self._windows and self._generations)  # no generation: off
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="step-marts", daemon=True)
        self.done = StepMarts()

    def __enter__(self) -> MartsAsDaysCommit:
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._enabled and kind is None and not self.done.failed:
            self._rebuild_ready()  # the days whose loads committed since the last look

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            if not self._rebuild_ready():
                return

    def _ready_days(self) -> list[date]:
        with transaction(self._loads) as conn:
            rows = conn.execute(
                "select distinct window_start_ms, window_end_ms, generation from load_batches"
                " where run_id = %s and status = 'succeeded'",
                (self._run_id,),
            ).fetchall()
        loaded: dict[date, set[str]] = {}
        for start_ms, end_ms, generation in rows:
            day = self._windows.get((start_ms, end_ms))
            if day is not None:
                loaded.setdefault(day, set()).add(generation)
        done = set(self.done.rebuilt)
        return sorted(
            day
            for day, generations in loaded.items()
            if day not in done and generations >= self._generations
        )

    def _rebuild_ready(self) -> bool:
        """Rebuild the days ready now; False once a pass failed (the marts step has them)."""
        try:
            ready = self._ready_days()
            if not ready:
                return True
            started = time.perf_counter()
            refresh = rebuild_marts(self._marts, ready)
        except Exception as exc:  # the marts step rebuilds what is left, and says why it fails
            # not a warning: the marts step meets the same error and reports it, once, with its
            # advice (a loader login without the analytics URL: pipelines/failures.py)
            log.info(
                "the marts of the loaded days could not be rebuilt in the load step (%s: %s); "
                "the marts step rebuilds them",
                type(exc).__name__,
                exc,
            )
            self.done.failed = type(exc).__name__
            return False
        self.done.rebuilt.extend(ready)
        self.done.affected.update(refresh.affected_days)
        self.done.passes += refresh.passes
        self.done.seconds += time.perf_counter() - started
        log.info(
            "marts of %s rebuilt as their loads committed (%d attempts, %.2f s)",
            ", ".join(d.isoformat() for d in ready),
            refresh.attempts,
            time.perf_counter() - started,
        )
        return True
