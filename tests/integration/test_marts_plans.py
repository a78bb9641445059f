"""A marts rebuild reads service_events, service_event_records and the marts' own tables only by
index, however long the history and whatever the planner's statistics say (issue 23): EXPLAIN of
every statement of a rebuild (and of the loader's queue statement) on a history built in SQL, its
services once as v1 events and once as v2 records, with fresh statistics, stale ones, and days
stored out of order."""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from pipelines.simulator.synthetic import insert_synthetic_history, synthetic_day
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import explain_marts, rebuild_marts
from pipelines.warehouse.sql_files import read_sql
from pipelines.windows import TimeWindow, day_start_ms
from tests.integration.conftest import add_events
from tests.v2records import upsert_synthetic_records

pytestmark = pytest.mark.integration

SERVICES, DAYS, RUNTIME_EVENTS = 100, 40, 21  # ~120 k events: a day is 2.5% of them
FIRST_DAY = date(2026, 9, 1)
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
SEQ_SCAN = re.compile(r"Seq Scan on (service_events|service_event_records)\b")
# the mart tables that grow with history (the daily ones as much as their days)
MART_SEQ_SCAN = re.compile(
    r"Seq Scan on (deployment_attempts|deployment_phases|deployment_outcomes_daily"
    r"|deployment_phase_durations_daily|deployment_failure_causes_daily"
    r"|unclassified_event_texts_daily)\b"
)


def _window(day: date) -> TimeWindow:
    return TimeWindow(day_start_ms(day), day_start_ms(day + timedelta(days=1)))


def _load(engine: Engine, day: date, events: list[ServiceEvent]) -> int:
    with WindowLoad(engine, _window(day)) as load:
        add_events(load, events)
        return load.commit().batch_id


def _build_history(engine: Engine, database_url: str, statistics: str) -> None:
    """DAYS days of SERVICES services in SQL, their marts, then statistics fresh or stale."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        # the test decides when statistics are taken
        conn.execute("alter table service_events set (autovacuum_enabled = false)")
        conn.execute("alter table service_event_records set (autovacuum_enabled = false)")
        if statistics == "shuffled":
            # days stored out of order (backfills, overlapping runs): the heap's order no longer
            # follows occurred_at, which makes the planner price the BRIN index as poor
            order = list(range(DAYS))
            random.Random(5).shuffle(order)
            for index in order:
                day = FIRST_DAY + timedelta(days=index)
                insert_synthetic_history(conn, day, 1, SERVICES, RUNTIME_EVENTS)
                upsert_synthetic_records(conn)
            conn.execute("analyze service_events, service_event_records")
        elif statistics == "stale":
            # statistics of the first two days only: the planner believes the table is small
            # and knows nothing of the days after
            insert_synthetic_history(conn, FIRST_DAY, 2, SERVICES, RUNTIME_EVENTS)
            upsert_synthetic_records(conn)
            conn.execute("analyze service_events, service_event_records")
            insert_synthetic_history(
                conn, FIRST_DAY + timedelta(days=2), DAYS - 2, SERVICES, RUNTIME_EVENTS
            )
            upsert_synthetic_records(conn)
        else:
            insert_synthetic_history(conn, FIRST_DAY, DAYS, SERVICES, RUNTIME_EVENTS)
            upsert_synthetic_records(conn)
            conn.execute("analyze service_events, service_event_records")
    for week in range(0, DAYS, 7):
        first = FIRST_DAY + timedelta(days=week)
        rebuild_marts(engine, [first + timedelta(days=i) for i in range(min(7, DAYS - week))])


def _plan(database_url: str, query: str, params: dict[str, Any]) -> str:
    with psycopg.connect(database_url) as conn:
        cur = psycopg.ClientCursor(conn)
        cur.execute("explain " + query, params)
        return "\n".join(str(row[0]) for row in cur.fetchall())


@pytest.mark.parametrize("statistics", ["fresh", "stale", "shuffled"])
def test_no_statement_of_a_rebuild_scans_service_events(
    engine: Engine, database_url: str, statistics: str
) -> None:
    _build_history(engine, database_url, statistics)
    # The next day loads as a nightly run would; a late event lands on the day before it: a
    # pass over both days, with queued (service, day) pairs.
    new_day = LAST_DAY + timedelta(days=1)
    with psycopg.connect(database_url) as conn:
        events = synthetic_day(conn, new_day, SERVICES, RUNTIME_EVENTS)
    _load(engine, new_day, events)
    late = ServiceEvent(
        "svc-000007", day_start_ms(LAST_DAY) + 3_600_000 + 7, "normal", "stop service"
    )
    batch_id = _load(engine, LAST_DAY, [late])
    # the v2 twins of the same: the new day's records and the late one, queued as a v2 load does
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert upsert_synthetic_records(conn, queue=True) > 0

    queue_plan = _plan(
        database_url,
        read_sql("load/queue_mart_rebuild.sql"),
        {"batch_id": batch_id, "start_ms": day_start_ms(LAST_DAY), "end_ms": day_start_ms(new_day)},
    )
    assert not SEQ_SCAN.search(queue_plan), queue_plan
    # stored_service_ids() (migration 0010) is inlined: its skip over the key index is part of
    # the plan, not a function run out of the planner's sight
    assert "Recursive Union" in queue_plan and "stored_service_ids" not in queue_plan, queue_plan
    # not the BRIN index either: its ranges widen as loads fill the free space vacuum leaves
    assert "service_events_occurred_at_brin" not in queue_plan, queue_plan

    plans = explain_marts(engine, [LAST_DAY, new_day])
    assert len(plans) == 23  # every statement of a pass (rules, coverage included)
    reading = {step: plan for step, plan in plans.items() if "service_events" in plan}
    assert set(reading) == {
        "marts/stage_mart_services.sql",
        "marts/stage_mart_scope.sql",
        "marts/stage_deployment_events.sql",
    }
    reading_records = {step for step, plan in plans.items() if "service_event_records" in plan}
    assert reading_records == {
        "marts/stage_mart_services.sql",
        "marts/stage_mart_scope.sql",
        "marts/stage_event_records.sql",
    }
    # v2: the versions of the scope by the start index and (service_id, create_at), then each
    # version's records by the version index
    records_plan = plans["marts/stage_event_records.sql"]
    assert "service_event_records_start_idx" in records_plan, records_plan
    assert "service_event_records_version_idx" in records_plan, records_plan
    # not the index of each version's start: led by the version, it would read every start of
    # the service to find those of a time range
    assert "service_event_records_version_start_idx" not in records_plan, records_plan
    for step, plan in plans.items():
        assert not SEQ_SCAN.search(plan), f"{step}:\n{plan}"
        assert "service_events_occurred_at_brin" not in plan, f"{step}:\n{plan}"
        # the marts' own tables too, but for the inserts of the rebuilt rows
        if step not in (
            "marts/insert_deployment_attempts.sql",
            "marts/insert_deployment_phases.sql",
        ):
            assert not MART_SEQ_SCAN.search(plan), f"{step}:\n{plan}"
    # one range of the key index per service, looped over the scoped services
    events_plan = plans["marts/stage_deployment_events.sql"]
    assert "Nested Loop" in events_plan and "service_events_key" in events_plan, events_plan
    # texts meet rules by a hash join on the first character, the unmatched ones found in the
    # same join: no anti-join, which the planner, underestimating the texts, ran as a nested loop
    # over texts x matches (22 M comparisons, 2.8 s of a 3-day rebuild of 200 services)
    assert "Anti Join" not in events_plan, events_plan
    # the boundaries before the first day, before the end and after it: one probe each of the
    # partial index, which the planner takes only while the query's condition implies the
    # index predicate (is_deployment_boundary, migration 0010)
    scope_plan = plans["marts/stage_mart_scope.sql"]
    assert scope_plan.count("service_events_deployment_boundary_idx") == 3, scope_plan
    # v2: the version start before the first day and the one after the last: a probe each of the
    # partial start index (migration 0013)
    assert scope_plan.count("service_event_records_start_idx ") == 2, scope_plan
    # and the start of each version with a record in the days: a probe of (service, version)
    assert "service_event_records_version_start_idx" in scope_plan, scope_plan
    # the starts check after a rebuild: a probe of the boundary index per service and day
    check_plan = _plan(
        database_url, read_sql("checks/lost_deployment_starts.sql"), {"days": [LAST_DAY, new_day]}
    )
    assert not SEQ_SCAN.search(check_plan) and not MART_SEQ_SCAN.search(check_plan), check_plan
    assert "service_events_deployment_boundary_idx" in check_plan, check_plan
    assert "service_event_records_start_idx" in check_plan, check_plan
    services_plan = plans["marts/stage_mart_services.sql"]
    # two skips over the services: of service_events and of service_event_records
    assert services_plan.count("Recursive Union") == 2, services_plan
    assert "stored_service_ids" not in services_plan, services_plan
    # each service's first and last event of the range (min, max): a probe of the key index each
    assert "Index Only Scan Backward using service_events_key" in services_plan, services_plan
