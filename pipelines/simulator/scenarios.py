"""Edge cases forced on the first five services, so tests can rely on them being present."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.simulator import vocabulary as v
from pipelines.simulator.attempts import FAILED, MINUTE_MS, SUPERSEDED, AttemptPlan
from pipelines.simulator.timeline import DAY_MS, HOUR_MS, ServiceTimeline

FORCED_SERVICES = 5
MULTI_MODELS = ("TF 3.0.0", "resnet (v2) 1.0.1", "模型 1.0.0")


def _midnight_crossing(tl: ServiceTimeline, start_ms: int, end_ms: int) -> None:
    """Service 0: an attempt starting 10 min before the first midnight, running past it."""
    if end_ms - start_ms < 2 * DAY_MS:  # no midnight inside a one-day history
        tl.run_natural(start_ms + tl.rng.randint(0, 12 * HOUR_MS), end_ms)
        return
    draft = tl.attempt(
        start_ms + DAY_MS - 10 * MINUTE_MS, AttemptPlan(("PyTorch 2.1.0",), build_ms=15 * MINUTE_MS)
    )
    tl.run_natural(draft.end_ms + 2 * HOUR_MS, end_ms)


def _superseded(tl: ServiceTimeline, start_ms: int, end_ms: int) -> None:
    """Service 1: an attempt superseded during image building, then a successful one."""
    models = ("my model [beta] 0.0.1",)
    first = tl.attempt(
        start_ms + tl.rng.randint(0, 2 * HOUR_MS),
        AttemptPlan(models, outcome=SUPERSEDED, build_ms=10 * MINUTE_MS, supersede_fraction=0.2),
    )
    second = tl.attempt(first.end_ms, AttemptPlan(models))
    tl.run_period(second.end_ms, second.end_ms + 3 * HOUR_MS, models)
    tl.run_natural(second.end_ms + 3 * HOUR_MS, end_ms)


def _in_progress_at_end(tl: ServiceTimeline, start_ms: int, end_ms: int) -> None:
    """Service 2: the last attempt starts 5 min before the end and builds for 20 min."""
    reached = tl.run_natural(start_ms + tl.rng.randint(0, 6 * HOUR_MS), end_ms - 3 * HOUR_MS)
    begin = max(end_ms - 5 * MINUTE_MS, reached + 1)
    tl.attempt(begin, AttemptPlan(tl.models, build_ms=20 * MINUTE_MS))


def _multi_model(tl: ServiceTimeline, start_ms: int, end_ms: int) -> None:
    """Service 3: a three-model success with environment and scheduling in the same ms."""
    draft = tl.attempt(
        start_ms + tl.rng.randint(0, HOUR_MS), AttemptPlan(MULTI_MODELS, same_ms_schedule=True)
    )
    tl.models = MULTI_MODELS
    tl.run_period(draft.end_ms, draft.end_ms + 4 * HOUR_MS, MULTI_MODELS)
    tl.run_natural(draft.end_ms + 4 * HOUR_MS, end_ms)


def _long_reason_and_unknown_text(tl: ServiceTimeline, start_ms: int, end_ms: int) -> None:
    """Service 4: a startup failure with a reason of several KB, then an unknown text."""
    draft = tl.attempt(
        start_ms + tl.rng.randint(0, HOUR_MS),
        AttemptPlan(
            ("模型 1.0.0",),
            outcome=FAILED,
            failure_phase=v.MODEL_STARTUP,
            reason=v.long_startup_reason(),
        ),
    )
    tl.emit(draft.end_ms + 30_000, v.NORMAL, v.UNKNOWN_TEXT)
    tl.run_natural(draft.end_ms + 10 * MINUTE_MS, end_ms)


SCENARIOS: tuple[Callable[[ServiceTimeline, int, int], None], ...] = (
    _midnight_crossing,
    _superseded,
    _in_progress_at_end,
    _multi_model,
    _long_reason_and_unknown_text,
)


def play_service(
    tl: ServiceTimeline, index: int, services: int, start_ms: int, end_ms: int
) -> None:
    """Fill tl from start to end: a forced scenario for the first services, else natural life."""
    if services >= FORCED_SERVICES and index < len(SCENARIOS):
        SCENARIOS[index](tl, start_ms, end_ms)
    else:
        tl.run_natural(start_ms + tl.rng.randint(0, 12 * HOUR_MS), end_ms)
