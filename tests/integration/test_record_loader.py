"""The v2 record loader on a real Postgres: forward-only merge, regressions kept and counted,
the history of changes, quarantine, the marts queue, and nothing left by a failed load."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import Engine

from pipelines.ingest_records import load_records_range
from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.history import HistoryConfig, generate_history
from pipelines.simulator.process import simulator_in_thread
from pipelines.source.auth import Secret, StaticToken
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.errors import ModelArtsAPIError
from pipelines.source.models import RejectedEvent
from pipelines.source.records import EventRecord, V2ServiceInfo, validate_record
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.records import load_records, upsert_v2_services
from pipelines.windows import TimeWindow
from tests.integration import test_least_privilege
from tests.queries import one, rows, scalar

pytestmark = pytest.mark.integration

role_urls = test_least_privilege.role_urls  # the fixture: the grant scripts' roles
DAY = 1_763_510_400_000  # 2025-11-19 00:00 UTC
WINDOW = TimeWindow(DAY, DAY + 86_400_000)
A = EventRecord("rec-a", "svc-1", "ver-1", "ABNORMAL", "[m 1.0] instance restarted unexpectedly",
                "事件", 3, DAY + 1_000, DAY + 5_000)  # fmt: skip
B = EventRecord("rec-b", "svc-1", "ver-1", "NORMAL", "start to deploy service", "开始部署服务",
                1, DAY + 500, DAY + 500)  # fmt: skip


def _stored(engine: Engine) -> dict[str, tuple[int, int, int, int, int]]:
    got = rows(
        engine,
        "select record_id, event_count, create_at, update_at, first_load_batch_id, "
        "last_load_batch_id from service_event_records",
    )
    return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in got}


def test_a_reload_moves_records_forward_only_and_keeps_their_history(engine: Engine) -> None:
    first = load_records(engine, WINDOW, [A, B], [])
    assert (first.records_new, first.records_changed) == (2, 0)

    grown = replace(A, event_count=5, update_at=DAY + 9_000, create_at=DAY + 900)
    second = load_records(engine, WINDOW, [grown, B, grown], [])
    assert second.counts() == {
        "records_new": 0, "records_changed": 1, "records_unchanged": 1, "records_regressed": 0,
    }  # fmt: skip
    # the earliest create_at, the larger count and later update_at; first and last load
    assert _stored(engine)["rec-a"] == (5, DAY + 900, DAY + 9_000, first.batch_id, second.batch_id)

    smaller = replace(A, event_count=4, update_at=DAY + 9_500)
    third = load_records(engine, WINDOW, [smaller], [])
    assert third.records_regressed == 1
    assert _stored(engine)["rec-a"][:3] == (5, DAY + 900, DAY + 9_000)  # kept as stored

    history = rows(
        engine,
        "select record_id, load_batch_id, count_before, count_after, update_at_before, "
        "update_at_after from service_event_record_changes order by record_id, load_batch_id",
    )
    assert [tuple(h) for h in history] == [
        ("rec-a", first.batch_id, None, 3, None, DAY + 5_000),
        ("rec-a", second.batch_id, 3, 5, DAY + 5_000, DAY + 9_000),
        ("rec-b", first.batch_id, None, 1, None, DAY + 500),
    ]
    audit = rows(
        engine,
        "select generation, status, records_new, records_changed, records_unchanged, "
        "records_regressed, inserted from load_batches order by batch_id",
    )
    assert [tuple(a) for a in audit] == [
        ("v2", "succeeded", 2, 0, 0, 0, 2),
        ("v2", "succeeded", 0, 1, 1, 0, 0),
        ("v2", "succeeded", 0, 0, 0, 1, 0),
    ]
    queued = rows(engine, "select load_batch_id, service_id, event_date::text from "
                          "mart_rebuild_queue order by load_batch_id")  # fmt: skip
    assert [tuple(q) for q in queued] == [
        (first.batch_id, "svc-1", "2025-11-19"),
        (second.batch_id, "svc-1", "2025-11-19"),
    ]


def test_bad_records_are_quarantined_once_with_their_reason(engine: Engine) -> None:
    raw = {"id": "x", "service_version_id": "v", "event_info": "t", "event_count": -1,
           "event_type": "NORMAL", "create_at": DAY, "update_at": DAY}  # fmt: skip
    bad = validate_record("svc-1", raw)
    assert isinstance(bad, RejectedEvent) and "event_count" in bad.reason
    for _ in range(2):
        result = load_records(engine, WINDOW, [A], [bad])
        assert result.quarantined == 1
    stored = rows(engine, "select service_id, reason from quarantined_events")
    assert [tuple(s) for s in stored] == [
        ("svc-1", "v2 record: event_count is not a non-negative integer")
    ]
    assert isinstance(validate_record("svc-1", {**raw, "event_count": 2}), EventRecord)
    late = validate_record("svc-1", {**raw, "event_count": 2, "update_at": DAY - 1})
    assert isinstance(late, RejectedEvent) and late.reason == "update_at before create_at"


def test_a_failed_load_leaves_no_record_and_a_failed_audit_row(engine: Engine) -> None:
    broken = replace(B, record_id="rec-c", event_info="nul \x00 inside")  # Postgres refuses NUL
    with pytest.raises(psycopg.Error):
        load_records(engine, WINDOW, [A, broken], [])
    assert scalar(engine, "select count(*) from service_event_records") == 0
    assert scalar(engine, "select count(*) from service_event_record_changes") == 0
    assert scalar(engine, "select status from load_batches") == "failed"
    load_records(engine, WINDOW, [A], [])
    assert set(_stored(engine)) == {"rec-a"}


def test_the_loader_role_may_load_records_and_v2_services(role_urls: dict[str, str]) -> None:
    """Least privilege (sql/grants/grant_loader.sql) is enough for every statement of a v2 load."""
    loader = create_warehouse_engine(role_urls["modelarts_loader"])
    try:
        load_records(loader, WINDOW, [A, B], [])
        bad = validate_record("svc-1", {"id": 1})
        assert isinstance(bad, RejectedEvent)
        result = load_records(loader, WINDOW, [replace(A, event_count=9)], [bad])
        assert (result.records_changed, result.quarantined) == (1, 1)
        info = V2ServiceInfo("svc-1", "name", "RUNNING", "1.0.1", 2, "REALTIME", "owner", DAY,
                             DAY + 1, {"id": "svc-1"})  # fmt: skip
        assert upsert_v2_services(loader, [info, info]) == 2
        got = one(loader, "select generation, owner, version_count, service_type, "
                          "extract(epoch from created_at) * 1000 from services")  # fmt: skip
        assert tuple(got) == ("v2", "owner", 2, "REALTIME", DAY)
    finally:
        loader.dispose()


def test_a_v2_load_takes_over_the_days_of_a_dead_load(engine: Engine) -> None:
    """A load whose process died (its audit row left `running`, its backend gone) is marked
    abandoned by the next load of its days, which loads them whole."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "insert into load_batches (window_start_ms, window_end_ms, loader_pid, generation) "
            f"values ({WINDOW.start_ms}, {WINDOW.end_ms}, 2147483000, 'v2')"
        )
    result = load_records(engine, WINDOW, [A, B], [])
    statuses = rows(engine, "select batch_id, status, error from load_batches order by batch_id")
    assert [s[1] for s in statuses] == ["abandoned", "succeeded"]
    assert f"batch {result.batch_id} took over" in statuses[0][2]
    assert result.records_new == 2


def test_a_failed_v2_extraction_loads_no_day_and_says_so_per_day(engine: Engine) -> None:
    history = generate_history(HistoryConfig(services=2, days=2, end_date=dt.date(2025, 11, 21)))
    config = SimulatorConfig(static_token="t", api="v2")
    with simulator_in_thread(history, config) as sim:
        settings = HttpSettings(max_retries=0)
        client = ModelArtsClient(  # a project the API does not know: 404 on every call
            sim.url, "other-project", StaticToken(Secret("t")), build_session(settings), settings
        )
        segments = [("2025-11-19", WINDOW), ("2025-11-20", TimeWindow(WINDOW.end_ms,
                    WINDOW.end_ms + 86_400_000))]  # fmt: skip
        with pytest.raises(ModelArtsAPIError):
            load_records_range(client, engine, [history.services[0].service_id], segments)
    audit = rows(engine, "select partition_key, generation, status, error from load_batches")
    assert [(a[0], a[1], a[2]) for a in audit] == [
        ("2025-11-19", "v2", "failed"),
        ("2025-11-20", "v2", "failed"),
    ]
    assert all(a[3].startswith("extraction failed: ModelArtsAPIError") for a in audit)
    assert scalar(engine, "select count(*) from service_event_records") == 0


def test_a_create_at_moved_to_an_earlier_day_queues_both_days(engine: Engine) -> None:
    """A reload that finds a record's first occurrence a day earlier (the API had returned a
    later create_at) moves it there: the marts of the day it leaves are rebuilt too."""
    load_records(engine, WINDOW, [A], [])
    earlier = replace(A, create_at=DAY - 3_600_000, event_count=4)
    second = load_records(engine, WINDOW, [earlier], [])
    assert _stored(engine)["rec-a"][:2] == (4, DAY - 3_600_000)
    queued = rows(
        engine,
        "select event_date::text from mart_rebuild_queue where load_batch_id = :b "
        "order by event_date",
        b=second.batch_id,
    )
    assert [q[0] for q in queued] == ["2025-11-18", "2025-11-19"]
