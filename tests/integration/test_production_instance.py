"""The production instance as deploy/README.md sets it up, started for real: Dagster's storage
on Postgres (deploy/dagster.yaml) with the guide's plain `postgresql://` DAGSTER_PG_URL, a
`dagster` login that owns its database, `dagster-webserver` and `dagster-daemon` as processes of
their own over workspace.yaml's code location, and the QueuedRunCoordinator. A run launched
through the UI's GraphQL waits in the queue, the daemon starts it, and it succeeds; the UI's
pages and GraphQL answer over that storage, and neither process logs an error."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo
from tests import REPO
from tests.integration.conftest import bare_environ, free_port, simulator_days, simulator_env

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
LOCATION = {"repositoryLocationName": "modelarts_events", "repositoryName": "__repository__"}
# Pages of the UI an operator opens: each must be served (not a 500) over the Postgres storage.
PAGES = ("/", "/runs", "/assets", "/jobs", "/overview/activity", "/deployment/daemons")
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@pytest.fixture
def dagster_pg_url(pg_admin_url: str) -> Iterator[str]:
    """The guide's Dagster database: a `dagster` login with a password owning database `dagster`
    (names made unique: roles are shared by the server's databases); its URL is a plain
    `postgresql://` one, as the guide's env file writes DAGSTER_PG_URL."""
    suffix = uuid.uuid4().hex[:8]
    login, database, password = f"dagster_{suffix}", f"dagster_{suffix}", secrets.token_hex(12)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("create role {} login password {}").format(
                sql.Identifier(login), sql.Literal(password)
            )
        )
        admin.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(database), sql.Identifier(login)
            )
        )
    url = make_url(pg_admin_url).set(
        drivername="postgresql", username=login, password=password, database=database
    )
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
        )
        admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(login)))


class _Process:
    """A command in a session of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], folder: Path) -> None:
        self.name, self.log = name, folder / f"{name}.log"
        self._out: IO[str] = self.log.open("w")
        self.process = subprocess.Popen(
            args, env=env, cwd=folder, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def alive(self) -> None:
        assert self.process.poll() is None, f"{self.name} exited:\n{self.output()[-4000:]}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._out.close()


class _Ui:
    """The webserver's HTTP: its pages and its GraphQL."""

    def __init__(self, port: int, webserver: _Process) -> None:
        self.base, self.webserver = f"http://127.0.0.1:{port}", webserver
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=60) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def wait_until_serving(self) -> None:
        while True:
            self.webserver.alive()
            with contextlib.suppress(urllib.error.URLError, ConnectionError):
                status, _ = self.get("/server_info")
                if status == 200:
                    return
            time.sleep(1)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base + "/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with self.opener.open(request, timeout=60) as answer:
                body: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as error:
            raise AssertionError(
                f"GraphQL answered {error.code}: {error.read().decode(errors='replace')[:2000]}"
            ) from error
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status stepStats { stepKey status attempts { startTime } } }
  }
}"""

OVERVIEW = """
query Overview($runId: ID!) {
  runsOrError(limit: 10) { __typename ... on Runs { results { runId status jobName } } }
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection { events { __typename } }
  }
  assetNodes(assetKeys: [{path: ["service_events"]}, {path: ["services"]}]) {
    assetKey { path }
    assetMaterializations(limit: 100) { runId }
  }
  instance {
    runQueuingSupported
    daemonHealth { allDaemonStatuses { daemonType healthy required } }
  }
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}"""


@contextlib.contextmanager
def _production_instance(
    env: dict[str, str], dagster_pg_url: str, folder: Path
) -> Iterator[tuple[_Ui, _Process, _Process]]:
    """deploy/dagster.yaml in a DAGSTER_HOME, the webserver and the daemon started over it
    (stopped at the end); the UI answering."""
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {**env, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": dagster_pg_url}
    workspace = ["-w", str(REPO / "workspace.yaml")]
    port = free_port()
    webserver = _Process(
        "webserver",
        [str(BIN / "dagster-webserver"), *workspace, "-h", "127.0.0.1", "-p", str(port)],
        env,
        folder,
    )
    daemon = _Process("daemon", [str(BIN / "dagster-daemon"), "run", *workspace], env, folder)
    try:
        ui = _Ui(port, webserver)
        ui.wait_until_serving()
        yield ui, webserver, daemon
    finally:
        webserver.stop()
        daemon.stop()


def _launch_and_wait(
    ui: _Ui, processes: tuple[_Process, ...], day: str
) -> tuple[str, dict[str, Any]]:
    """The nightly job for `day`, launched as the UI launches it; queued; the daemon starts it,
    a run worker executes it: its id and its end, once it ended (pytest's timeout bounds the
    wait; a dead process fails at once)."""
    launched = ui.graphql(
        LAUNCH,
        params={
            "selector": {**LOCATION, "jobName": "nightly"},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id: str = launched["run"]["runId"]
    assert launched["run"]["status"] == "QUEUED"  # the QueuedRunCoordinator holds it
    while True:
        for process in processes:
            process.alive()
        run: dict[str, Any] = ui.graphql(RUN, runId=run_id)["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in TERMINAL:
            return run_id, run
        time.sleep(2)


def _no_errors_logged(*processes: _Process) -> None:
    """Neither process met an error on the way (a storage error is logged, not raised, by
    both)."""
    for process in processes:
        output = process.output()
        assert "Traceback" not in output and "Error" not in output.replace("ERROR", ""), (
            process.name,
            output[-4000:],
        )


def test_the_production_instance_runs_on_postgres_storage(
    simulator: SimulatorInfo,
    engine: object,  # the warehouse, migrated by its owner (a run never migrates)
    database_url: str,
    dagster_pg_url: str,
    tmp_path: Path,
) -> None:
    assert dagster_pg_url.startswith("postgresql://")  # no driver, as the guide writes it
    env = {
        **bare_environ(),
        **simulator_env(simulator, database_url),
        "PIPELINES_DATA_DIR": str(tmp_path / "data"),
    }
    with _production_instance(env, dagster_pg_url, tmp_path) as (ui, webserver, daemon):
        run_id, run = _launch_and_wait(ui, (webserver, daemon), simulator_days(simulator)[1])
        steps = {s["stepKey"]: s["status"] for s in run["stepStats"]}
        assert run["status"] == "SUCCESS", (run, daemon.output()[-4000:])
        assert steps and set(steps.values()) == {"SUCCESS"}, steps
        assert "service_events" in steps

        # the UI over the same storage: its pages, and the GraphQL they ask
        for page in (*PAGES, f"/runs/{run_id}"):
            status, body = ui.get(page)
            assert status == 200, (page, status, body[:2000])
        data = ui.graphql(OVERVIEW, runId=run_id)
        runs = data["runsOrError"]["results"]
        assert [(r["runId"], r["status"]) for r in runs if r["runId"] == run_id] == [
            (run_id, "SUCCESS")
        ]
        events = [e["__typename"] for e in data["logsForRun"]["events"]]
        assert "RunSuccessEvent" in events and "MaterializationEvent" in events, events
        materialized = {
            node["assetKey"]["path"][0]: [m["runId"] for m in node["assetMaterializations"]]
            for node in data["assetNodes"]
        }
        # (the catch-up sensor, on from the start, may have launched runs of the simulator's
        # other days beside this one: theirs are listed too)
        assert run_id in materialized["service_events"]
        # the nightly job keeps `services` materialized: the UI's "Materialize" of a day's
        # assets has no "upstream assets have not been materialized" warning
        assert run_id in materialized["services"]
        assert data["instance"]["runQueuingSupported"] is True
        daemons = {
            d["daemonType"]: d["healthy"]
            for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]
            if d["required"]
        }
        assert {"SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= set(daemons), daemons
        assert all(daemons.values()), daemons
        [location] = data["workspaceOrError"]["locationEntries"]
        assert location["name"] == "modelarts_events"
        assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation", location
    _no_errors_logged(webserver, daemon)


STEP_EVENTS = """
query Steps($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    ... on EventConnection {
      events {
        __typename
        ... on StepEvent { stepKey }
        ... on ExecutionStepFailureEvent { failureMetadata { description } }
      }
    }
  }
}"""


@pytest.mark.usefixtures("engine")
def test_a_settings_error_in_a_run_the_ui_launches_fails_its_first_step_once(
    simulator: SimulatorInfo, database_url: str, dagster_pg_url: str, tmp_path: Path
) -> None:
    # the daemon's run workers see no API setting: the first step fails, once, on one line
    env = {
        **bare_environ(),
        "HOME": str(tmp_path),  # no ~/.huaweicloud/credentials either
        "DATABASE_URL": database_url,
        "PIPELINES_DATA_DIR": str(tmp_path / "data"),
    }
    with _production_instance(env, dagster_pg_url, tmp_path) as (ui, webserver, daemon):
        run_id, run = _launch_and_wait(ui, (webserver, daemon), simulator_days(simulator)[1])
        assert run["status"] == "FAILURE", run
        events = ui.graphql(STEP_EVENTS, runId=run_id)["logsForRun"]["events"]
    kinds = [e["__typename"] for e in events if e.get("stepKey") == "service_events"]
    assert kinds.count("ExecutionStepUpForRetryEvent") == 0, kinds
    assert kinds.count("ExecutionStepRestartEvent") == 0, kinds
    assert kinds.count("ExecutionStepFailureEvent") == 1, kinds
    [failure] = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    description = failure["failureMetadata"]["description"]
    assert description.startswith("MODELARTS_ENDPOINT or HUAWEICLOUD_REGION must be set"), failure
    assert "\n" not in description


def test_the_cli_runs_on_the_same_postgres_storage(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    engine: object,
    dagster_pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `modelarts-etl rerun` with the guide's env file: its run is stored in Dagster's database
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    monkeypatch.setenv("PIPELINES_DATA_DIR", str(tmp_path / "data"))
    assert main(["rerun", simulator_days(simulator)[1]]) == 0, capsys.readouterr()
    assert "succeeded" in capsys.readouterr().out
    with psycopg.connect(make_url(dagster_pg_url).render_as_string(hide_password=False)) as conn:
        runs = conn.execute("select pipeline_name, status from runs").fetchall()
    assert runs == [("nightly", "SUCCESS")]
