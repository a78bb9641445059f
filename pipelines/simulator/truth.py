"""The ground truth as someone would see it at a given time: attempts and phases cut at as_of."""

from __future__ import annotations

from dataclasses import replace

from pipelines.simulator.models import AttemptTruth, History, PhaseTruth

IN_PROGRESS = "in_progress"


def truncate_phase(phase: PhaseTruth, as_of_ms: int) -> PhaseTruth:
    """The phase seen at as_of_ms (the caller drops phases that start after it)."""
    if phase.end_ms is not None and phase.end_ms <= as_of_ms:
        return phase
    return replace(phase, end_ms=None, duration_ms=None, status=IN_PROGRESS)


def truncate_attempt(attempt: AttemptTruth, as_of_ms: int) -> AttemptTruth | None:
    """The attempt seen with only events at or before as_of_ms; None if it starts later."""
    if attempt.attempt_start > as_of_ms:
        return None
    if attempt.ended_at_ms is not None and attempt.ended_at_ms <= as_of_ms:
        return attempt
    phases = tuple(truncate_phase(p, as_of_ms) for p in attempt.phases if p.start_ms <= as_of_ms)
    return replace(
        attempt,
        outcome=IN_PROGRESS,
        ended_at_ms=None,
        failure_phase=None,
        failure_reason=None,
        failure_cause=None,
        failure_category=None,
        time_to_running_ms=None,
        phases=phases,
    )


def truncate_attempts(attempts: list[AttemptTruth], as_of_ms: int) -> list[AttemptTruth]:
    seen = (truncate_attempt(a, as_of_ms) for a in attempts)
    return [a for a in seen if a is not None]


def truth_as_of(history: History, as_of_ms: int) -> list[AttemptTruth]:
    """Attempts as seen with only the events with occur_time <= as_of_ms.

    An attempt whose terminal event (or superseding start) is later is `in_progress`, its phases
    cut likewise; attempts starting after as_of_ms are absent. Comes from the generator's
    intent: the history's attempts are already cut at its end, and cutting composes.
    """
    return truncate_attempts(history.attempts, as_of_ms)
