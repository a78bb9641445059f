"""A load that dies mid-stream stops its fetching workers: no thread, and no process, hangs."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import Engine

from pipelines.ingest import load_events_window
from pipelines.simulator.process import running_simulator
from pipelines.source.auth import Secret, StaticToken
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.extract import ExtractSettings
from pipelines.windows import TimeWindow

pytestmark = pytest.mark.integration

# 2026-11-19 00:00 UTC: the one day the simulator below holds (its --end-date is exclusive), so
# the load has 300,000 events to stream when the connection is killed
DAY_START_MS = 1_795_046_400_000


def test_a_connection_killed_mid_copy_fails_the_load_and_stops_the_workers(
    engine: Engine, database_url: str
) -> None:
    args = ["--services", "60", "--days", "1", "--events-per-service-day", "5000",
            "--end-date", "2026-11-20", "--static-token", "t"]  # fmt: skip
    with running_simulator(args) as info:
        settings = HttpSettings()
        client = ModelArtsClient(
            info.url, info.project_id, StaticToken(Secret("t")), build_session(settings), settings
        )
        service_ids = [s.service_id for s in client.list_services()]

        def kill_when_loading() -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for _ in range(500):
                    running = conn.execute(
                        "select count(*) from load_batches where status = 'running'"
                    ).fetchone()
                    if running and running[0]:
                        time.sleep(0.3)  # mid-stream: fetching and COPY under way
                        conn.execute(
                            "select pg_terminate_backend(pid) from pg_stat_activity"
                            " where application_name = 'modelarts-events-pipeline'"
                        )
                        return
                    time.sleep(0.01)

        killer = threading.Thread(target=kill_when_loading)
        killer.start()
        # Keep the exception alive, as Dagster does (it logs and serialises it): its traceback
        # holds the load's frames, so nothing but an explicit close stops the workers.
        with pytest.raises(psycopg.OperationalError) as failure:
            load_events_window(
                client, engine, service_ids, TimeWindow(DAY_START_MS, DAY_START_MS + 86_400_000),
                ExtractSettings(workers=4, max_buffered_pages=2),
            )  # fmt: skip
        killer.join()
    # generous: a worker may be mid-request on a loaded machine when the load fails
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        t.name.startswith("extract") for t in threading.enumerate()
    ):
        time.sleep(0.1)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("extract")]
    # the load's own connection was the one killed, and its error is what the load raised
    killed = failure.value
    assert killed.sqlstate == "57P01" or "server closed the connection" in str(killed), killed
    with psycopg.connect(database_url) as conn:
        batches = conn.execute("select status from load_batches").fetchall()
        stored = conn.execute("select count(*) from service_events").fetchone()
    assert [status for (status,) in batches] == ["failed"]
    assert stored == (0,)
