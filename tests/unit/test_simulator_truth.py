"""truth_as_of: attempts and phases as seen with only the events up to a time."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.simulator.history import History, HistoryConfig, generate_history, truth_as_of

END = dt.date(2026, 11, 29)


@pytest.fixture(scope="module")
def history() -> History:
    return generate_history(HistoryConfig(end_date=END))


def test_at_the_end_it_is_the_history_truth(history: History) -> None:
    assert truth_as_of(history, history.end_ms - 1) == history.attempts
    assert truth_as_of(history, history.end_ms + 10**9) == history.attempts


def test_before_the_start_nothing(history: History) -> None:
    assert truth_as_of(history, history.start_ms - 1) == []


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "superseded"])
def test_terminal_event_decides(history: History, outcome: str) -> None:
    attempt = next(a for a in history.attempts if a.outcome == outcome)
    assert attempt.ended_at_ms is not None
    key = (attempt.service_id, attempt.attempt_start)

    def seen(as_of: int) -> list:
        return [a for a in truth_as_of(history, as_of) if (a.service_id, a.attempt_start) == key]

    before = seen(attempt.ended_at_ms - 1)
    assert len(before) == 1 and before[0].outcome == "in_progress"
    assert before[0].ended_at_ms is None and before[0].failure_reason is None
    assert seen(attempt.ended_at_ms) == [attempt]
    assert seen(attempt.attempt_start - 1) == []
    assert seen(attempt.attempt_start)[0].phases == ()


def test_phases_are_cut(history: History) -> None:
    attempt = next(a for a in history.attempts if a.outcome == "succeeded" and len(a.phases) >= 5)
    middle = attempt.phases[2]
    assert middle.end_ms is not None
    cut = middle.end_ms - 1
    seen = next(
        a
        for a in truth_as_of(history, cut)
        if (a.service_id, a.attempt_start) == (attempt.service_id, attempt.attempt_start)
    )
    assert all(p.start_ms <= cut for p in seen.phases)
    for p in seen.phases:
        if p.status == "in_progress":
            assert p.end_ms is None and p.duration_ms is None
        else:
            assert p.end_ms is not None and p.end_ms <= cut
    assert any(p.status == "in_progress" for p in seen.phases)


def test_truth_is_json_exportable(history: History) -> None:
    data = history.attempts[0].to_dict()
    assert set(data) >= {"service_id", "attempt_start", "outcome", "phases", "models"}
    assert isinstance(data["phases"], list) and isinstance(data["models"], list)
