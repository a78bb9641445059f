"""Play one deployment attempt: its events and its truth, from a plan and a seeded random source.

Phases follow docs/VOCABULARY.md: image building per model, one "preparing environment", then per
model environment success and resource scheduling, then per model image pulling and model startup.
A phase's status and end come only from its own end event: a phase left open by another model's
failure, by a "deploy service failed" or by supersession stays `in_progress` with end None.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, replace
from typing import Final

from pipelines.simulator import families
from pipelines.simulator import vocabulary as v
from pipelines.simulator.models import AttemptTruth, Event, PhaseTruth
from pipelines.simulator.truth import truncate_attempt

SUCCEEDED = "succeeded"
FAILED = "failed"
SUPERSEDED = "superseded"

MINUTE_MS = 60_000
# The phases a deployment timeout can hang in: how long (ms, low-high) one runs before it fails,
# and before it succeeds.
_HANGING_PHASE_MS: Final = {
    v.IMAGE_PULLING: ((20_000, 10 * MINUTE_MS), (20_000, 5 * MINUTE_MS)),
    v.MODEL_STARTUP: ((5_000, 5 * MINUTE_MS), (5_000, 3 * MINUTE_MS)),
}


@dataclass(frozen=True)
class AttemptPlan:
    """What an attempt is meant to do; durations are drawn unless forced."""

    models: tuple[str, ...]
    outcome: str = SUCCEEDED  # succeeded | failed | superseded
    failure_phase: str | None = None
    failure_model: int = 0  # index into models of the model whose phase fails
    reason: v.Reason | None = None
    timeout_phase: str = v.MODEL_STARTUP  # the phase that hangs before "deploy service failed"
    supersede_fraction: float = 0.5  # where between start and terminal the next start arrives
    build_ms: int | None = None
    same_ms_schedule: bool = False  # schedule success in the same millisecond as env success


@dataclass(frozen=True)
class AttemptDraft:
    events: list[Event]
    truth: AttemptTruth
    end_ms: int  # time of the terminal event or of the superseding start


class _Recorder:
    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.events: list[Event] = []
        self.phases: list[list[object]] = []  # [model, phase, start, end, status]

    def emit(self, t: int, event_type: str, text: str) -> None:
        self.events.append(Event(t, event_type, text))

    def open(self, model: str, phase: str, t: int) -> int:
        self.phases.append([model, phase, t, None, "in_progress"])
        return len(self.phases) - 1

    def close(self, index: int, t: int, status: str) -> None:
        self.phases[index][3] = t
        self.phases[index][4] = status

    def phase_truths(self) -> tuple[PhaseTruth, ...]:
        out = []
        for model, phase, start, end, status in self.phases:
            assert isinstance(start, int)
            end_ms = end if isinstance(end, int) else None
            out.append(
                PhaseTruth(
                    model=str(model),
                    phase=str(phase),
                    start_ms=start,
                    end_ms=end_ms,
                    duration_ms=None if end_ms is None else end_ms - start,
                    status=str(status),
                )
            )
        return tuple(out)


class _Terminated(Exception):
    """Raised inside play_attempt when the attempt has reached its terminal event."""


def _build_ms(rng: random.Random) -> int:
    if rng.random() < 0.35:  # image cached: success right away, as in the vendor sample
        return rng.randint(10, 60)
    return rng.randint(2 * MINUTE_MS, 12 * MINUTE_MS)


class _Player:
    def __init__(
        self,
        service_id: str,
        start_ms: int,
        plan: AttemptPlan,
        rng: random.Random,
        family: str = families.REFERENCE,
    ):
        self.service_id = service_id
        self.family = family
        self.plan = plan
        self.rng = rng
        self.rec = _Recorder(start_ms)
        self.t = start_ms
        self.outcome = SUCCEEDED
        self.failure: tuple[str, str, str, str] | None = None  # phase, text, cause, category

    def phase_event(self, text: str) -> None:
        """A phase begin or success: the console family has none (same times, same truth)."""
        if self.family == families.REFERENCE:
            self.rec.emit(self.t, v.NORMAL, text)

    def gap(self, low: int = 5, high: int = 30) -> None:
        self.t += self.rng.randint(low, high)

    def _fails(self, phase: str, index: int) -> bool:
        p = self.plan
        return p.outcome == FAILED and p.failure_phase == phase and p.failure_model == index

    def _times_out(self, phase: str, index: int) -> bool:
        p = self.plan
        return (
            p.outcome == FAILED
            and p.failure_phase == v.DEPLOYMENT
            and p.timeout_phase == phase
            and p.failure_model == index
        )

    def _reason(self, phase: str) -> v.Reason:
        if self.plan.reason is not None:
            return self.plan.reason
        reasons = v.REASONS[phase]
        return self.rng.choices(reasons, weights=v.REASON_WEIGHTS[phase])[0]

    def fail(self, phase: str, model: str, phase_index: int | None, after_ms: int) -> None:
        self.t += after_ms
        reason = self._reason(phase)
        failure = families.failure_text(self.family, phase, model, reason, self.service_id)
        self.rec.emit(self.t, v.ABNORMAL, failure.text)
        if phase_index is not None:
            self.rec.close(phase_index, self.t, FAILED)
        self.outcome = FAILED
        self.failure = (phase, failure.text, reason.cause, failure.category)
        raise _Terminated

    def time_out(self) -> None:
        timeout_at = self.rec.start_ms + self.rng.randint(20 * MINUTE_MS, 40 * MINUTE_MS)
        self.fail(v.DEPLOYMENT, "", None, max(timeout_at - self.t, MINUTE_MS))

    def hanging_phase(self, phase: str, model: str, index: int, begin: str, success: str) -> None:
        """An image pull or a model startup: it may hang until the deployment times out, fail,
        or succeed after a while (_HANGING_PHASE_MS)."""
        fails_after, succeeds_after = _HANGING_PHASE_MS[phase]
        self.gap()
        self.phase_event(begin)
        ph = self.rec.open(model, phase, self.t)
        if self._times_out(phase, index):
            self.time_out()
        if self._fails(phase, index):
            self.fail(phase, model, ph, self.rng.randint(*fails_after))
        self.t += self.rng.randint(*succeeds_after)
        self.phase_event(success)
        self.rec.close(ph, self.t, SUCCEEDED)

    def play(self) -> None:
        rng, rec, models = self.rng, self.rec, self.plan.models
        rec.emit(self.t, v.NORMAL, families.start_text(self.family))
        for i, m in enumerate(models):
            self.gap()
            self.phase_event(v.building_image(m))
            ph = rec.open(m, v.IMAGE_BUILDING, self.t)
            if self._fails(v.IMAGE_BUILDING, i):
                self.fail(v.IMAGE_BUILDING, m, ph, rng.randint(30_000, 10 * MINUTE_MS))
            self.t += self.plan.build_ms if self.plan.build_ms is not None else _build_ms(rng)
            self.phase_event(v.build_image_success(m))
            rec.close(ph, self.t, SUCCEEDED)
        self.gap(1000, 5000)
        self.phase_event(v.PREPARING_ENVIRONMENT)
        env = [rec.open(m, v.ENVIRONMENT_PREPARATION, self.t) for m in models]
        for i, m in enumerate(models):
            if self._fails(v.ENVIRONMENT_PREPARATION, i):
                self.fail(v.ENVIRONMENT_PREPARATION, m, env[i], rng.randint(5_000, 60_000))
            self.t += rng.randint(10_000, 60_000) if i == 0 else rng.randint(50, 3_000)
            self.phase_event(v.prepare_environment_success(m))
            rec.close(env[i], self.t, SUCCEEDED)
            ph = rec.open(m, v.RESOURCE_SCHEDULING, self.t)
            if self._fails(v.RESOURCE_SCHEDULING, i):
                if self.family == families.CONSOLE:  # waits for resources, then gives up
                    rec.emit(self.t + 1, v.NORMAL, families.CONSOLE_WAITING)
                self.fail(v.RESOURCE_SCHEDULING, m, ph, rng.randint(30_000, 10 * MINUTE_MS))
            if not self.plan.same_ms_schedule:
                self.gap(3, 15)
            self.phase_event(v.schedule_resource_success(m))
            rec.close(ph, self.t, SUCCEEDED)
        for i, m in enumerate(models):
            self.hanging_phase(v.IMAGE_PULLING, m, i, v.pulling_image(m), v.pull_image_success(m))
            self.hanging_phase(v.MODEL_STARTUP, m, i, v.starting_model(m), v.start_model_success(m))
        self.gap()
        rec.emit(self.t, v.NORMAL, families.success_text(self.family, self.service_id))

    def truth(self) -> AttemptTruth:
        failure = self.failure
        return AttemptTruth(
            service_id=self.service_id,
            attempt_start=self.rec.start_ms,
            outcome=self.outcome,
            ended_at_ms=self.t,
            failure_phase=failure[0] if failure else None,
            failure_reason=failure[1] if failure else None,
            failure_cause=failure[2] if failure else None,
            failure_category=failure[3] if failure else None,
            family=self.family,
            models=self.plan.models,
            time_to_running_ms=self.t - self.rec.start_ms if self.outcome == SUCCEEDED else None,
            phases=self.rec.phase_truths(),
        )


def play_attempt(
    service_id: str,
    start_ms: int,
    plan: AttemptPlan,
    rng: random.Random,
    family: str = families.REFERENCE,
) -> AttemptDraft:
    """The events and truth of one attempt starting at start_ms (not yet cut at the data end),
    in the texts of `family` (the same times and truth in every family)."""
    player = _Player(service_id, start_ms, plan, rng, family)
    with contextlib.suppress(_Terminated):
        player.play()
    truth = player.truth()
    events = player.rec.events
    if plan.outcome != SUPERSEDED:
        return AttemptDraft(events, truth, player.t)
    span = player.t - start_ms
    cut = start_ms + max(1, min(span, int(span * plan.supersede_fraction)))
    seen = truncate_attempt(truth, cut - 1)
    assert seen is not None
    superseded = replace(seen, outcome=SUPERSEDED, ended_at_ms=cut)
    return AttemptDraft([e for e in events if e.occur_time < cut], superseded, cut)
