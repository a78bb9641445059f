"""The Dagster daemon for real: the nightly schedule ticks, the queued run launches, rows land."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pipelines.simulator.process import pipeline_environment, running_simulator
from pipelines.warehouse.database import sqlalchemy_url

pytestmark = pytest.mark.integration


def _yesterday_rows(database_url: str) -> int:
    engine = create_engine(sqlalchemy_url(database_url))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    start = (
        int(datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=UTC).timestamp()) * 1000
    )
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("select to_regclass('service_events')")).scalar()
            if exists is None:
                return 0
            return int(
                conn.execute(
                    text(
                        "select count(*) from service_events"
                        " where occur_time >= :s and occur_time < :e"
                    ),
                    {"s": start, "e": start + 86_400_000},
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_the_daemon_runs_the_nightly_schedule_and_rows_land(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # A simulator whose history ends today, so "yesterday" has events.
    with running_simulator(["--services", "4", "--days", "2", "--seed", "11"]) as info:
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("MODELARTS_", "HUAWEICLOUD_"))
            },
            **pipeline_environment(info),
            "DATABASE_URL": database_url,
            "DAGSTER_HOME": str(tmp_path),
            "PIPELINES_NIGHTLY_CRON": "* * * * *",  # tick every minute
            "PIPELINES_NIGHTLY_LOOKBACK_DAYS": "0",
        }
        daemon = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-daemon"),
                "run",
                "-m",
                "pipelines.definitions",
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "daemon.log", "w"),  # noqa: SIM115
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 240  # the next minute boundary, then the run itself
            rows = 0
            while time.monotonic() < deadline and rows == 0:
                time.sleep(3)
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
                rows = _yesterday_rows(database_url)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
    assert rows > 0, (tmp_path / "daemon.log").read_text()[-3000:]
