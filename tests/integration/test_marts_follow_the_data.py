"""Marts follow the data (issue 16): whichever load changes a day's events, that day's marts are
rebuilt, including attempts that the late events carry across midnight."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import Engine, text

from pipelines.simulator.history import generate_history
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import rebuild_marts
from pipelines.warehouse.transactions import pooled_connection
from pipelines.windows import TimeWindow, day_start_ms
from tests.integration.conftest import (
    add_events,
    expected_events,
    simulator_days,
    simulator_fixture,
    stored_events,
)
from tests.integration.test_deployment_marts import assert_marts_equal_truth, snapshot, utc_date
from tests.reliability.scenarios import (
    DAY_MS,
    HOUR_MS,
    LATE_CONFIG,
    late_visibility,
    pipeline_env,
    post_events,
)

pytestmark = pytest.mark.integration


def _ms(day: date, hours: float = 0) -> int:
    return day_start_ms(day) + int(hours * HOUR_MS)


LATE_SIM_ARGS = ["--services", "6", "--days", "4", "--seed", "11", "--end-date", "2026-11-20"]
# its own simulator: the test appends events to it
late_simulator = simulator_fixture(LATE_SIM_ARGS)


def _run(env: dict[str, str], first: date, last: date, cwd: Path) -> None:
    command = [sys.executable, "-m", "pipelines.cli", "run", "--start", str(first)]
    done = subprocess.run(
        [*command, "--end", str(last)], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def _attempt(engine: Engine, service_id: str, start_ms: int) -> tuple[object, ...] | None:
    with pooled_connection(engine) as conn:
        row = conn.execute(
            "select attempt_date, outcome, attempt_end, failure_cause"
            " from analytics.deployment_attempts where service_id = %s and attempt_start = %s",
            (service_id, start_ms),
        ).fetchone()
    return None if row is None else tuple(row)


def test_run_with_lookback_rebuilds_the_marts_of_the_days_its_late_events_changed(
    late_simulator: SimulatorInfo, database_url: str, tmp_path: Path
) -> None:
    days = [date.fromisoformat(d) for d in simulator_days(late_simulator)]  # 4 days
    env = {
        **pipeline_env(late_simulator, database_url, tmp_path),
        "MODELARTS_LOOKBACK_HOURS": "48",
    }
    _run(env, days[0], days[2], tmp_path)  # the first nights: days 0..2

    # Events of days 1 and 2 that the API shows only now, after those days were loaded.
    truth = requests.get(f"{late_simulator.url}/_sim/truth", timeout=30).json()
    services = sorted({a["service_id"] for a in truth})
    failed_start = _ms(days[1], 22) + 123  # an attempt on day 1 that failed
    crossing_start = _ms(days[1], 23.95)  # an attempt from 23:57 on day 1 to 00:02 on day 2
    post_events(late_simulator, services[1], [
        (failed_start, "normal", "start to deploy service"),
        (failed_start + 60_000, "abnormal", "deploy service failed: deployment timeout"),
    ])  # fmt: skip
    post_events(late_simulator, services[2], [
        (crossing_start, "normal", "start to deploy service"),
        (crossing_start + 1_000, "normal", "preparing environment"),
    ])  # fmt: skip
    post_events(late_simulator, services[2], [
        (_ms(days[2], 0.03), "normal", "service is running"),
    ])  # fmt: skip
    post_events(late_simulator, services[3], [
        (_ms(days[2], 10), "normal", "custom hook executed: late"),
    ])  # fmt: skip

    engine = create_warehouse_engine(database_url)
    try:
        assert _attempt(engine, services[1], failed_start) is None
        # the next night: day 3, with a 48 h lookback over days 1 and 2
        _run(env, days[3], days[3], tmp_path)

        assert stored_events(database_url) == expected_events(late_simulator)
        assert _attempt(engine, services[1], failed_start) == (
            days[1], "failed", failed_start + 60_000, "timeout",
        )  # fmt: skip
        assert _attempt(engine, services[2], crossing_start) == (
            days[1], "succeeded", _ms(days[2], 0.03), None,
        )  # fmt: skip
        incremental = snapshot(engine)
        late_texts = [
            row for row in incremental["unclassified_event_texts_daily"]
            if ("event_info", repr("custom hook executed: late")) in row
        ]  # fmt: skip
        assert len(late_texts) == 1
        with psycopg.connect(database_url) as conn:
            assert conn.execute("select count(*) from mart_rebuild_queue").fetchone() == (0,)
            # every mart rebuilt from scratch over all the days gives the same rows
            for table in incremental:
                conn.execute(f"delete from analytics.{table}")
            conn.commit()
        rebuild_marts(engine, days)
        assert snapshot(engine) == incremental
    finally:
        engine.dispose()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nightly_loads_with_lookback_of_late_events_end_with_the_marts_of_the_truth(
    engine: Engine, seed: int
) -> None:
    """Issue 16's scenario in process: 7 days where 5% of the events become visible 1-30 h
    late; every night loads yesterday and a 48 h lookback with what is visible by then (the
    loader of the `service_events` asset), then rebuilds yesterday's marts. Nights go on over
    the last day until every event is visible. The marts end equal to the simulator's truth."""
    history = generate_history(replace(LATE_CONFIG, seed=seed))
    visible = late_visibility(history, random.Random(seed))
    late_events = sum(1 for at, e in visible if at > e.occur_time)
    assert late_events > 20

    def load(window: TimeWindow, now_ms: int) -> None:
        with WindowLoad(engine, window) as batch:
            add_events(
                batch,
                [e for at, e in visible if window.contains(e.occur_time) and at <= now_ms],
            )
            batch.commit()

    for night in range(1, LATE_CONFIG.days + 4):
        index = min(night - 1, LATE_CONFIG.days - 1)  # yesterday; after the data, its last day
        day_start = history.start_ms + index * DAY_MS
        now_ms = history.start_ms + night * DAY_MS + HOUR_MS
        load(TimeWindow(day_start - 48 * HOUR_MS, day_start), now_ms)
        load(TimeWindow(day_start, day_start + DAY_MS), now_ms)
        rebuild_marts(engine, [utc_date(day_start)])

    with engine.connect() as conn:
        stored = conn.execute(text("select count(*) from service_events")).scalar_one()
    assert stored == history.event_count
    assert_marts_equal_truth(engine, history.attempts)
