"""Operations that overlap in time: two backfills at once, and late data on the next night."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance, build_schedule_context
from sqlalchemy import Engine, text

from pipelines.assets.schedules import build_nightly_schedule
from pipelines.definitions import build_definitions
from pipelines.settings import NightlySchedule
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.windows import day_start_ms
from tests.integration.conftest import (
    bare_environ,
    expected_events,
    simulator_days,
    simulator_env,
    simulator_fixture,
    stored_events,
)
from tests.integration.test_deployment_assets import served_truth
from tests.integration.test_deployment_marts import assert_marts_equal_truth

pytestmark = pytest.mark.integration


def test_two_concurrent_backfills_over_overlapping_days_end_exact_and_consistent(
    simulator: SimulatorInfo, database_url: str, tmp_path: Path
) -> None:
    days = simulator_days(simulator)
    env = {**bare_environ(), **simulator_env(simulator, database_url)}
    runs = []
    for i, (first, last) in enumerate([(days[0], days[1]), (days[1], days[2])]):
        home = tmp_path / f"home{i}"
        home.mkdir()
        command = [
            sys.executable,
            "-m",
            "pipelines.cli",
            "backfill",
            "--start",
            first,
            "--end",
            last,
        ]
        runs.append(
            subprocess.Popen(
                command,
                env={**env, "DAGSTER_HOME": str(home)},
                cwd=home,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]

    engine = create_warehouse_engine(database_url)
    try:
        assert stored_events(database_url) == expected_events(simulator)
        assert_marts_equal_truth(engine, served_truth(simulator))
    finally:
        engine.dispose()


LATE_SIM_ARGS = ["--services", "5", "--days", "3", "--seed", "3", "--end-date", "2026-11-20"]
# its own simulator: the test appends events to it
late_simulator = simulator_fixture(LATE_SIM_ARGS)


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_a_late_event_reaches_its_day_and_that_days_marts_on_the_next_nightly_run(
    late_simulator: SimulatorInfo, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in simulator_env(late_simulator, database_url).items():
        monkeypatch.setenv(key, value)
    schedule = build_nightly_schedule(NightlySchedule(lookback_days=2))
    job = build_definitions().resolve_job_def("nightly")
    instance = DagsterInstance.ephemeral()

    def nightly(tick_day: date) -> None:
        tick = datetime(tick_day.year, tick_day.month, tick_day.day, 0, 30, tzinfo=UTC)
        request = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick))
        assert request.run_requests
        run = request.run_requests[0]
        assert job.execute_in_process(instance=instance, tags=dict(run.tags)).success

    days = simulator_days(late_simulator)  # 2026-11-17 .. 2026-11-19
    nightly(date.fromisoformat(days[-1]))  # the night after day 2: loads days 0..1
    service_id = requests.get(f"{late_simulator.url}/_sim/truth", timeout=30).json()[0][
        "service_id"
    ]
    # day 1, 22:00:00.123, already loaded
    late_start = day_start_ms(date.fromisoformat(days[1])) + 22 * 3_600_000 + 123
    late = [
        {"occur_time": late_start, "event_type": "normal", "event_info": "start to deploy service"},
        {"occur_time": late_start + 60_000, "event_type": "abnormal",
         "event_info": "deploy service failed: deployment timeout"},
    ]  # fmt: skip
    answer = requests.post(
        f"{late_simulator.url}/_sim/events", json={"service_id": service_id, "events": late},
        timeout=30,
    )  # fmt: skip
    assert answer.status_code < 300, answer.text

    def failed_on_day_1(engine: Engine) -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("select coalesce(sum(failed), 0) from analytics.deployment_outcomes_daily"
                         " where service_id = :s and attempt_date = :d"),
                    {"s": service_id, "d": date.fromisoformat(days[1])},
                ).scalar_one()
            )  # fmt: skip

    engine = create_warehouse_engine(database_url)
    try:
        assert (service_id, late_start, "normal", "start to deploy service") not in stored_events(
            database_url
        )
        failed_before = failed_on_day_1(engine)
        nightly(date.fromisoformat(days[-1]) + timedelta(days=1))  # next night: days 0..2 again
        assert (service_id, late_start, "normal", "start to deploy service") in stored_events(
            database_url
        )
        assert failed_on_day_1(engine) == failed_before + 1
        with engine.connect() as conn:
            outcome, cause = conn.execute(
                text("select outcome, failure_cause from analytics.deployment_attempts"
                     " where service_id = :s and attempt_start = :t"),
                {"s": service_id, "t": late_start},
            ).one()  # fmt: skip
        assert (outcome, cause) == ("failed", "timeout")
    finally:
        engine.dispose()
