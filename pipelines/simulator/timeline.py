"""The life of one service: deployment attempts, running periods with runtime events, stops."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pipelines.simulator import families
from pipelines.simulator import vocabulary as v
from pipelines.simulator.attempts import (
    FAILED,
    MINUTE_MS,
    SUCCEEDED,
    SUPERSEDED,
    AttemptDraft,
    AttemptPlan,
    play_attempt,
)
from pipelines.simulator.models import AttemptTruth, Event

HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

_FAILURE_PHASE_WEIGHTS = {
    v.IMAGE_BUILDING: 3.0,
    v.ENVIRONMENT_PREPARATION: 1.5,
    v.RESOURCE_SCHEDULING: 3.0,
    v.IMAGE_PULLING: 2.0,
    v.MODEL_STARTUP: 3.0,
    v.DEPLOYMENT: 1.0,
}


@dataclass
class RunningPeriod:
    start_ms: int
    end_ms: int
    models: tuple[str, ...]


@dataclass
class ServiceTimeline:
    """Accumulates one service's events and attempt truths in time order."""

    service_id: str
    rng: random.Random
    incidents_per_day: float
    events: list[Event] = field(default_factory=list)
    attempts: list[AttemptTruth] = field(default_factory=list)
    running: list[RunningPeriod] = field(default_factory=list)
    instances: int = 1
    models: tuple[str, ...] = ()
    family: str = families.REFERENCE

    def __post_init__(self) -> None:
        self.models = self._draw_models()
        self.instances = self.rng.randint(1, 3)

    def _draw_models(self) -> tuple[str, ...]:
        rng = self.rng
        count = rng.choices((1, 2, 3), weights=(0.72, 0.2, 0.08))[0]
        names = rng.sample(v.MODEL_NAMES, count)
        return tuple(
            f"{n} {rng.randint(0, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}" for n in names
        )

    def _bump_versions(self) -> None:
        if self.rng.random() < 0.3:
            self.models = self._draw_models()

    def random_plan(self) -> AttemptPlan:
        rng = self.rng
        roll = rng.random()
        if roll < 0.66:
            return AttemptPlan(self.models)
        if roll < 0.92:
            phases = list(_FAILURE_PHASE_WEIGHTS)
            phase = rng.choices(phases, weights=list(_FAILURE_PHASE_WEIGHTS.values()))[0]
            return AttemptPlan(
                self.models,
                outcome=FAILED,
                failure_phase=phase,
                failure_model=rng.randrange(len(self.models)),
                timeout_phase=rng.choice((v.IMAGE_PULLING, v.MODEL_STARTUP)),
            )
        return AttemptPlan(
            self.models, outcome=SUPERSEDED, supersede_fraction=rng.uniform(0.05, 0.95)
        )

    def attempt(self, start_ms: int, plan: AttemptPlan) -> AttemptDraft:
        draft = play_attempt(self.service_id, start_ms, plan, self.rng, self.family)
        self.events.extend(draft.events)
        self.attempts.append(draft.truth)
        return draft

    def emit(self, t: int, event_type: str, text: str) -> None:
        self.events.append(Event(t, event_type, text))

    def run_period(self, start_ms: int, end_ms: int, models: tuple[str, ...]) -> None:
        """A running service between start and end: restarts and scaling at the incident rate."""
        self.running.append(RunningPeriod(start_ms, end_ms, models))
        rate_per_ms = self.incidents_per_day / DAY_MS
        if rate_per_ms <= 0:
            return
        t = start_ms + int(self.rng.expovariate(rate_per_ms))
        while t < end_ms:
            self.emit_runtime_event(t, models)
            t += max(1, int(self.rng.expovariate(rate_per_ms)))

    def emit_runtime_event(self, t: int, models: tuple[str, ...]) -> None:
        if self.rng.random() < 0.6:
            self.emit(t, v.ABNORMAL, v.instance_restarted(self.rng.choice(models)))
            return
        after = max(1, self.instances + self.rng.choice((-1, 1)))
        self.emit(t, v.NORMAL, v.scale_instances(self.instances, after))
        self.instances = after

    def run_natural(self, t: int, horizon_ms: int) -> int:
        """Attempts, running periods and stops from t until horizon; returns the time reached."""
        rng = self.rng
        while t < horizon_ms:
            plan = self.random_plan()
            draft = self.attempt(t, plan)
            t = draft.end_ms
            if plan.outcome == SUPERSEDED:
                continue
            if draft.truth.outcome == SUCCEEDED:
                until = min(t + int(rng.expovariate(1 / (10 * HOUR_MS))), horizon_ms)
                self.run_period(t, until, plan.models)
                t = max(t, until) + rng.randint(1_000, 60_000)
                t = self._between_deployments(t)
            else:
                t += rng.randint(5 * MINUTE_MS, 3 * HOUR_MS)
            self._bump_versions()
        return t

    def _between_deployments(self, t: int) -> int:
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:
            self.emit(t, v.NORMAL, v.UPDATE_CONFIGURATION)
            return t + rng.randint(500, 5_000)
        if roll < 0.85:
            self.emit(t, v.NORMAL, v.STOP_SERVICE)
            t += rng.randint(2_000, 30_000)
            self.emit(t, v.NORMAL, v.SERVICE_STOPPED)
            return t + rng.randint(10 * MINUTE_MS, 6 * HOUR_MS)
        return t
