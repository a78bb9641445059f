"""The generated history: determinism, guaranteed edge cases, consistency with its truth."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import orjson
import pytest

from pipelines.simulator import vocabulary as v
from pipelines.simulator.history import History, HistoryConfig, generate_history

END = dt.date(2026, 11, 29)
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def history() -> History:
    return generate_history(HistoryConfig(end_date=END))


def _dump(h: History) -> bytes:
    return orjson.dumps(
        {
            "events": {k: [e.to_dict() for e in evs] for k, evs in h.events_by_service.items()},
            "attempts": [a.to_dict() for a in h.attempts],
            "services": [s.to_dict() for s in h.services],
        }
    )


def test_same_config_gives_identical_history(history: History) -> None:
    assert _dump(generate_history(HistoryConfig(end_date=END))) == _dump(history)


def test_other_seed_gives_other_history(history: History) -> None:
    other = generate_history(HistoryConfig(end_date=END, seed=7))
    assert [s.service_id for s in other.services] != [s.service_id for s in history.services]


def test_window_is_the_last_full_days(history: History) -> None:
    end_ms = int(dt.datetime(2026, 11, 29, tzinfo=dt.UTC).timestamp()) * 1000
    assert (history.start_ms, history.end_ms) == (end_ms - 7 * DAY_MS, end_ms)


def test_events_sorted_inside_window_and_distinct(history: History) -> None:
    for events in history.events_by_service.values():
        times = [e.occur_time for e in events]
        assert times == sorted(times)
        assert all(history.start_ms <= t < history.end_ms for t in times)
        assert len({(e.occur_time, e.event_info) for e in events}) == len(events)
        assert {e.event_type for e in events} <= {"normal", "abnormal"}


def test_services_look_like_the_listing(history: History) -> None:
    names = [s.service_name for s in history.services]
    assert len(set(names)) == len(names) == 20
    for s in history.services:
        assert len(s.service_id) == 36 and s.service_id[14] == "4"
        assert s.service_name.startswith("service-") and len(s.service_name) == 13
        assert s.infer_type in ("real-time", "batch", "edge")
        assert s.status in ("running", "failed", "stopped", "deploying")


def test_attempt_crossing_midnight(history: History) -> None:
    assert any(
        a.ended_at_ms is not None and a.attempt_start // DAY_MS != a.ended_at_ms // DAY_MS
        for a in history.attempts
    )


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "superseded", "in_progress"])
def test_every_outcome_present(history: History, outcome: str) -> None:
    assert any(a.outcome == outcome for a in history.attempts)


def test_failures_in_every_phase_and_cause(history: History) -> None:
    phases = Counter(a.failure_phase for a in history.attempts if a.outcome == "failed")
    causes = Counter(a.failure_cause for a in history.attempts if a.outcome == "failed")
    assert set(phases) == set(v.FAILURE_PHASES)
    assert set(causes) == set(v.CAUSES)


def test_in_progress_attempt_at_the_end(history: History) -> None:
    running = [a for a in history.attempts if a.outcome == "in_progress"]
    assert running
    assert all(a.ended_at_ms is None for a in running)
    assert any(p.status == "in_progress" and p.end_ms is None for a in running for p in a.phases)


def test_multi_model_success_with_same_millisecond_events(history: History) -> None:
    forced = ("TF 3.0.0", "resnet (v2) 1.0.1", "模型 1.0.0")
    multi = [a for a in history.attempts if a.outcome == "succeeded" and a.models == forced]
    assert multi
    events = history.events_by_service[multi[0].service_id]
    by_time: dict[int, list[str]] = {}
    for e in events:
        by_time.setdefault(e.occur_time, []).append(e.event_info)
    assert ["[TF 3.0.0] prepare environment success", "[TF 3.0.0] schedule resource success"] in (
        by_time.values()
    )


def test_unknown_text_and_long_reason(history: History) -> None:
    texts = [e.event_info for evs in history.events_by_service.values() for e in evs]
    assert v.UNKNOWN_TEXT in texts
    long = [t for t in texts if len(t.encode()) > 3000]
    assert long and all(("\n" in t and '"' in t and "模型" in t) for t in long)
    reasons = [a.failure_reason for a in history.attempts if a.failure_reason in long]
    assert reasons


def test_truth_agrees_with_events(history: History) -> None:
    for a in history.attempts:
        events = history.events_by_service[a.service_id]
        at_start = [e.event_info for e in events if e.occur_time == a.attempt_start]
        assert v.START_DEPLOY in at_start
        if a.outcome == "failed":
            assert a.failure_reason in [
                e.event_info for e in events if e.occur_time == a.ended_at_ms
            ]
        if a.outcome == "succeeded":
            at_end = [e.event_info for e in events if e.occur_time == a.ended_at_ms]
            assert v.SERVICE_RUNNING in at_end
            assert a.ended_at_ms is not None
            assert a.time_to_running_ms == a.ended_at_ms - a.attempt_start
        if a.outcome == "superseded":
            at_end = [e.event_info for e in events if e.occur_time == a.ended_at_ms]
            assert v.START_DEPLOY in at_end
        for p in a.phases:
            assert p.phase in v.PHASES and p.model in a.models
            assert (p.end_ms is None) == (p.status == "in_progress")


def test_starts_match_start_events(history: History) -> None:
    starts = Counter(
        (sid, e.occur_time)
        for sid, evs in history.events_by_service.items()
        for e in evs
        if e.event_info == v.START_DEPLOY
    )
    assert starts == Counter((a.service_id, a.attempt_start) for a in history.attempts)


def test_padding_reaches_the_requested_size() -> None:
    h = generate_history(
        HistoryConfig(services=50, days=1, end_date=END, events_per_service_day=300)
    )
    assert 0.9 * 15_000 <= h.event_count <= 1.1 * 15_000
