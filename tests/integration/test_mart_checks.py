"""The marts' starts check (every_start_has_its_attempt: sql/checks/lost_deployment_starts.sql)
made to fail on real data and to pass again: a start stored by the loader is queued, so it is not
lost before the next rebuild; once its queue row is gone without a rebuild, the check names it
until its day is rebuilt."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from dagster import AssetCheckResult
from sqlalchemy import Engine

from pipelines.assets.checks import STARTS_HAVE_ATTEMPTS, run_mart_checks
from pipelines.simulator.records import EventRecord
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import query_check, rebuild_marts
from pipelines.windows import TimeWindow, day_start_ms
from tests.integration.conftest import add_events
from tests.v2records import store_records

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 2)
HOUR_MS = 3_600_000
FIRST_START = day_start_ms(DAY) + 9 * HOUR_MS
LATE_START = FIRST_START + 2 * HOUR_MS


def _window(day: date) -> TimeWindow:
    return TimeWindow(day_start_ms(day), day_start_ms(day + timedelta(days=1)))


def _load(engine: Engine, events: list[ServiceEvent]) -> None:
    with WindowLoad(engine, _window(DAY)) as load:
        add_events(load, events)
        load.commit()


def _starts_check(engine: Engine, rebuilt_days: list[date]) -> AssetCheckResult:
    """The check as the marts asset runs it: the rebuilt days, and the materialized day."""
    results = run_mart_checks(engine, rebuilt_days, [_window(DAY)])
    [result] = [r for r in results if r.check_name == STARTS_HAVE_ATTEMPTS.name]
    return result


def _lost_starts(engine: Engine) -> list[tuple[object, ...]]:
    return query_check(engine, "lost_deployment_starts", {"days": [DAY]})


def _queued(database_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("select service_id, event_date from mart_rebuild_queue").fetchall()


def test_a_start_neither_in_the_marts_nor_queued_fails_the_check_until_its_day_is_rebuilt(
    engine: Engine, database_url: str
) -> None:
    _load(
        engine,
        [
            ServiceEvent("svc-a", FIRST_START, "normal", "start to deploy service"),
            ServiceEvent("svc-a", FIRST_START + 60_000, "normal", "service is running"),
            ServiceEvent("svc-b", FIRST_START, "normal", "stop service"),
        ],
    )
    rebuild_marts(engine, [DAY])
    passed = _starts_check(engine, [DAY])
    assert passed.passed and passed.metadata["offending_rows"].value == 0
    assert _lost_starts(engine) == []

    # a later attempt (the console family's start) loaded and not rebuilt yet: its day is queued
    # for the next rebuild, so the start is behind the marts but not lost
    _load(engine, [ServiceEvent("svc-a", LATE_START, "normal", "The service starts to deploy.")])
    assert _queued(database_url) == [("svc-a", DAY)]
    assert _lost_starts(engine) == []

    # the queue row gone without the rebuild that should have followed it: lost. The asset's
    # check looks at the materialized day too, which no rebuild named.
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from mart_rebuild_queue")
    started_at = datetime.fromtimestamp(LATE_START / 1000, tz=UTC)
    assert _lost_starts(engine) == [("svc-a", LATE_START, started_at)]
    failed = _starts_check(engine, rebuilt_days=[])
    assert not failed.passed
    assert failed.metadata["offending_rows"].value == 1
    assert failed.metadata["days_checked"].value == DAY.isoformat()
    assert str(LATE_START) in str(failed.metadata["sample"].value)

    refresh = rebuild_marts(engine, [DAY])
    assert refresh.attempts == 2
    assert _lost_starts(engine) == []
    assert _starts_check(engine, list(refresh.affected_days)).passed


def _record(version: str, text: str, at: int) -> EventRecord:
    return EventRecord(f"rec-{version}-{at}", "v2-a", version, "NORMAL", text, "事件", 1, at, at)


def test_a_v2_version_start_is_checked_the_same_way(engine: Engine, database_url: str) -> None:
    """v2: a version's start record is a start; the load queues its day (tests/v2records.py
    stores as the v2 loader must); a start whose queue row vanished before a rebuild is named
    until its day is rebuilt; the daily rows reconcile with the v2 attempts."""
    store_records(
        engine,
        [
            _record("A1", "start to deploy service", FIRST_START),
            _record("A1", "service is running", FIRST_START + 60_000),
        ],
    )
    rebuild_marts(engine, [DAY])
    assert _lost_starts(engine) == []
    store_records(engine, [_record("A2", "The service starts to deploy.", LATE_START)])
    assert _queued(database_url) == [("v2-a", DAY)]
    assert _lost_starts(engine) == []
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from mart_rebuild_queue")
    started_at = datetime.fromtimestamp(LATE_START / 1000, tz=UTC)
    assert _lost_starts(engine) == [("v2-a", LATE_START, started_at)]
    assert not _starts_check(engine, rebuilt_days=[]).passed

    refresh = rebuild_marts(engine, [DAY])
    assert refresh.attempts == 2
    assert _lost_starts(engine) == []
    assert query_check(engine, "unreconciled_outcomes", {"days": [DAY]}) == []
    assert all(r.passed for r in run_mart_checks(engine, [DAY], [_window(DAY)]))
    # a daily row that says the wrong generation no longer reconciles
    with psycopg.connect(database_url) as conn:
        conn.execute("update analytics.deployment_outcomes_daily set generation = 'v1'")
    offending = query_check(engine, "unreconciled_outcomes", {"days": [DAY]})
    assert sorted(r[:3] for r in offending) == [(DAY, "v2-a", "v1"), (DAY, "v2-a", "v2")]
