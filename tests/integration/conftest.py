"""Integration fixtures: the simulator on a free loopback port, and an environment that points the
pipeline's resources at it and at the test's own database."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Literal

import psycopg
import pytest
import requests

from pipelines import settings
from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo, pipeline_environment, running_simulator
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import WindowLoad

# A fixed history: 12 services over 3 days ending (exclusive) 2026-11-20.
SIM_ARGS = ["--services", "12", "--days", "3", "--seed", "7", "--end-date", "2026-11-20"]

# The six tables of schema `analytics` that one mart rebuild writes (written out here, not read from
# the code under test, so a mart the code drops or adds fails the tests that use this list).
MARTS = (
    "deployment_attempts",
    "deployment_phases",
    "deployment_outcomes_daily",
    "deployment_phase_durations_daily",
    "deployment_failure_causes_daily",
    "unclassified_event_texts_daily",
)


def simulator_fixture(args: list[str], scope: Literal["session", "function"] = "function") -> Any:
    """A fixture that serves a history of its own, the simulator started with `args`, for each
    test (or for the session): assign it to the fixture's name."""

    def serve() -> Iterator[SimulatorInfo]:
        with running_simulator(args) as info:
            yield info

    return pytest.fixture(scope=scope)(serve)


simulator = simulator_fixture(SIM_ARGS, scope="session")


def simulator_days(info: SimulatorInfo) -> list[str]:
    start, end = date.fromisoformat(info.start_date), date.fromisoformat(info.end_date)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days)]


def expected_events(
    info: SimulatorInfo, start_ms: int = 0, end_ms: int = 2**62
) -> set[tuple[str, int, str, str]]:
    """The simulator's deduplicated events with start_ms <= occur_time < end_ms (all of them
    unless a window is given)."""
    body: dict[str, Any] = requests.get(
        f"{info.url}/_sim/expected",
        params={"start_time": start_ms, "end_time": end_ms - 1},
        timeout=30,
    ).json()
    return {
        (e["service_id"], e["occur_time"], e["event_type"], e["event_info"]) for e in body["events"]
    }


def stored_events(database_url: str) -> set[tuple[str, int, str, str]]:
    """Every stored event as (service_id, occur_time, event_type, event_info)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select service_id, occur_time, event_type, event_info from service_events"
        ).fetchall()
    return {(r[0], r[1], r[2], r[3]) for r in rows}


def simulator_env(info: SimulatorInfo, database_url: str, auth: str = "aksk") -> dict[str, str]:
    """Environment variables that point the pipeline at the simulator (its AK/SK, unless `auth`
    says `password` or `metadata`) and a database."""
    return {**pipeline_environment(info, auth), settings.DATABASE_URL: database_url}


@pytest.fixture
def pipeline_env(
    simulator: SimulatorInfo, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = simulator_env(simulator, database_url)
    monkeypatch.delenv(settings.MODELARTS_TOKEN, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


# The variables that configure the pipeline: the API, the credentials, the warehouse and Dagster.
PIPELINE_SETTINGS = ("MODELARTS_", "HUAWEICLOUD_", "DATABASE_URL", "DAGSTER_")


def bare_environ() -> dict[str, str]:
    """This process's environment without any of the pipeline's settings: what a child
    `modelarts-etl` sees on a machine configured for nothing (embedded defaults), except the
    tests' long retention horizon (tests/conftest.py), without which their fixed days would
    fall out of the API's default 30 days as the calendar moves."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(PIPELINE_SETTINGS) or k == settings.MODELARTS_RETENTION_DAYS
    }


def free_port() -> int:
    """A loopback port nothing listened on when asked (a closed port, or one to serve on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No API, credential or warehouse setting from the caller's environment; HOME (no
    ~/.huaweicloud/credentials) and DAGSTER_HOME (telemetry off) in the test's own directory."""
    for var in list(os.environ):
        if var.startswith(PIPELINE_SETTINGS):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")


OneLineError = Callable[[dict[str, str], list[str], int], str]


@pytest.fixture
def one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> OneLineError:
    """run(env, argv, code): the CLI with `argv` and the variables `env` set must exit with `code`,
    one line on stderr and no traceback, before it starts anything (no simulator, no embedded
    Postgres); returns that line."""

    def run(env: dict[str, str], argv: list[str], code: int) -> str:
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        assert main(argv) == code
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and err.startswith(f"modelarts-etl {argv[0]}: error: "), err
        assert "Traceback" not in err
        assert "simulator:" not in out and "warehouse:" not in out
        return err

    return run


def add_events(load: WindowLoad, events: Iterable[ServiceEvent], block_rows: int = 10_000) -> int:
    """Encode `events` and hand them to the load in blocks of `block_rows`, as the extraction
    workers hand it pages; returns how many."""
    iterator = iter(events)
    taken = 0
    while block := list(islice(iterator, block_rows)):
        taken += load.add_encoded(load.encode_events(block))
    return taken


class WebhookRecorder(BaseHTTPRequestHandler):
    """An alert webhook on loopback: every JSON body POSTed to it, in order."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def alert_webhook() -> Iterator[str]:
    """The URL of a WebhookRecorder (its path a token, as real webhook URLs hold one)."""
    server = HTTPServer(("127.0.0.1", 0), WebhookRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    WebhookRecorder.received.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret"
    server.shutdown()
