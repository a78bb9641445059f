"""v2 event records from a service's timeline: versions, aggregation, types, ids, and one truth
with the v1 events of the same timeline."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest

from pipelines.simulator import families
from pipelines.simulator import vocabulary as v
from pipelines.simulator.history import History, HistoryConfig, generate_history
from pipelines.simulator.models import Event
from pipelines.simulator.records import (
    ABNORMAL,
    NORMAL,
    WARNING,
    EventRecord,
    event_records,
    record_id,
    version_id,
)

END = dt.date(2026, 11, 29)
SID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(scope="module", params=[families.REFERENCE, families.CONSOLE])
def vocabulary(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def history(vocabulary: str) -> History:
    return generate_history(HistoryConfig(services=12, days=5, end_date=END, vocabulary=vocabulary))


def _records(history: History) -> dict[str, list[EventRecord]]:
    return {sid: event_records(sid, evs) for sid, evs in history.events_by_service.items()}


def test_repeats_of_a_version_are_one_record_with_count_first_and_last() -> None:
    restart = v.instance_restarted("TF 1.0.0")
    events = [
        Event(5, v.ABNORMAL, restart),  # before any start: the version already running
        Event(10, v.NORMAL, v.START_DEPLOY),
        Event(20, v.ABNORMAL, restart),
        Event(30, v.NORMAL, v.SERVICE_RUNNING),
        Event(40, v.ABNORMAL, restart),
        Event(50, v.ABNORMAL, restart),
        Event(60, v.NORMAL, v.START_DEPLOY),
        Event(70, v.ABNORMAL, restart),
    ]
    got = event_records(SID, events)
    initial, first, second = version_id(SID, None), version_id(SID, 10), version_id(SID, 60)
    assert [
        (r.service_version_id, r.event_info, r.event_count, r.create_at, r.update_at) for r in got
    ] == [
        (initial, restart, 1, 5, 5),
        (first, v.START_DEPLOY, 1, 10, 10),
        (first, restart, 3, 20, 50),
        (first, v.SERVICE_RUNNING, 1, 30, 30),
        (second, v.START_DEPLOY, 1, 60, 60),
        (second, restart, 1, 70, 70),
    ]
    assert len({r.record_id for r in got}) == len(got)
    assert got[2].record_id == record_id(first, restart)
    assert [r.event_type for r in got] == [ABNORMAL, NORMAL, ABNORMAL, NORMAL, NORMAL, ABNORMAL]
    assert all(r.service_id == SID for r in got)


def test_waiting_for_resources_is_a_warning_and_every_record_has_a_chinese_text() -> None:
    events = [
        Event(1, v.NORMAL, families.CONSOLE_START),
        Event(2, v.NORMAL, families.CONSOLE_WAITING),
        Event(3, v.ABNORMAL, "Insufficient GPU. The scheduling failed. Supplementary: x"),
    ]
    got = event_records(SID, events)
    assert [r.event_type for r in got] == [NORMAL, WARNING, ABNORMAL]
    assert got[1].event_info_cn == "资源不足，等待空闲资源充足。"
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r.event_info_cn) for r in got)
    assert got[0].to_dict()["id"] == got[0].record_id
    assert set(got[0].to_dict()) == {
        "id",
        "service_id",
        "service_version_id",
        "event_count",
        "event_type",
        "event_info",
        "event_info_cn",
        "create_at",
        "update_at",
    }


def test_same_timeline_gives_same_records(vocabulary: str, history: History) -> None:
    again = generate_history(
        HistoryConfig(services=12, days=5, end_date=END, vocabulary=vocabulary)
    )
    assert _records(again) == _records(history)


def test_records_as_of_equal_records_of_the_events_up_to_then(history: History) -> None:
    cut = history.start_ms + (history.end_ms - history.start_ms) // 2
    for sid, events in history.events_by_service.items():
        assert event_records(sid, events, cut) == event_records(
            sid, [e for e in events if e.occur_time <= cut]
        )


def test_counts_add_up_to_the_events(history: History) -> None:
    for sid, events in history.events_by_service.items():
        records = event_records(sid, events)
        assert sum(r.event_count for r in records) == len(events)
        assert all(r.create_at <= r.update_at for r in records)
        per_text = Counter(e.event_info for e in events)
        for text, count in per_text.items():
            assert sum(r.event_count for r in records if r.event_info == text) == count


def test_one_version_per_attempt_and_the_same_truth_as_v1(history: History) -> None:
    """Each attempt of the truth is the version its start opened: it starts at the create_at of
    the version's start record, and its terminal text is a record of that version at the
    attempt's end (the lifecycle texts of an attempt each appear once, first occurrence kept)."""
    records = _records(history)
    by_version: dict[tuple[str, str], dict[str, EventRecord]] = defaultdict(dict)
    for sid, recs in records.items():
        for r in recs:
            by_version[(sid, r.service_version_id)][r.event_info] = r
    starts = {
        (sid, r.create_at)
        for sid, recs in records.items()
        for r in recs
        if r.event_info in (v.START_DEPLOY, families.CONSOLE_START)
    }
    assert starts == {(a.service_id, a.attempt_start) for a in history.attempts}
    checked = 0
    for a in history.attempts:
        version = by_version[(a.service_id, version_id(a.service_id, a.attempt_start))]
        start = families.start_text(a.family)
        assert version[start].create_at == a.attempt_start
        assert version[start].event_count == 1
        if a.outcome == "failed":
            assert a.failure_reason is not None
            failure = version[a.failure_reason]
            assert (failure.event_type, failure.create_at) == (ABNORMAL, a.ended_at_ms)
            checked += 1
        if a.outcome == "succeeded":
            success = version[families.success_text(a.family, a.service_id)]
            assert success.create_at == a.ended_at_ms
            checked += 1
        for phase in a.phases:  # reference texts: each phase begin is a record at its start
            if a.family == families.REFERENCE and phase.phase == v.IMAGE_BUILDING:
                assert version[v.building_image(phase.model)].create_at == phase.start_ms
    assert checked > 10
