"""`run` over several days is one Dagster run: the services listed once, each service's events
of the range asked for once, a progress row per day, the marts of the range rebuilt."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
import pytest
import requests
from dagster import DagsterInstance

from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo
from pipelines.windows import day_start_ms
from tests.integration.conftest import expected_events, simulator_days, stored_events

pytestmark = pytest.mark.integration


def _served(info: SimulatorInfo) -> dict[str, int]:
    stats = requests.get(f"{info.url}/_sim/stats", timeout=10).json()
    return {kind: sum(by_status.values()) for kind, by_status in stats["requests"].items()}


def test_run_over_a_range_is_one_dagster_run_asking_each_service_once(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    days = simulator_days(simulator)
    before = _served(simulator)

    assert main(["run", "--start", days[0], "--end", days[-1]]) == 0

    served = _served(simulator)
    out = capsys.readouterr().out
    # 12 services of fewer than 1000 events each over the range: one page each, one listing
    # by the run, plus the CLI's credential pre-flight (one listing call with limit=1)
    assert served.get("services", 0) - before.get("services", 0) == 2
    assert served["events"] - before.get("events", 0) == 12
    loads, heading, outcomes = out.partition("deployment attempts by UTC day")
    rows = [line.split() for line in loads.splitlines() if line[:2] == "20"]
    assert [r[0] for r in rows] == days  # a progress row per day, in order
    # then, after the run, the attempts per day as the mart holds them
    assert heading
    assert [line.split()[0] for line in outcomes.splitlines() if line[:2] == "20"] == days
    with psycopg.connect(pipeline_env["DATABASE_URL"]) as conn:
        batches = conn.execute(
            "select partition_key, run_id, inserted from load_batches order by partition_key"
        ).fetchall()
        attempts = conn.execute("select count(*) from analytics.deployment_attempts").fetchone()
    assert [b[0] for b in batches] == days
    assert len({b[1] for b in batches}) == 1  # every day loaded by the same run
    assert [int(r[3]) for r in rows] == [b[2] for b in batches]
    assert attempts is not None and attempts[0] > 0
    runs = DagsterInstance.get().get_runs()
    assert [run.run_id for run in runs] == [batches[0][1]]
    assert runs[0].tags["dagster/asset_partition_range_start"] == days[0]
    assert runs[0].tags["dagster/asset_partition_range_end"] == days[-1]

    day_ms = 86_400_000
    start_ms = _day_start_ms(days[0])
    assert stored_events(pipeline_env["DATABASE_URL"]) == expected_events(
        simulator, start_ms, start_ms + len(days) * day_ms
    )


def _day_start_ms(day: str) -> int:
    return day_start_ms(date.fromisoformat(day))
