"""deploy/README.md's warehouse setup, run as written: the owner migrates and grants, the logins of
its SQL block are created, the loader and the transformer of its env file run a day through the
CLI, and the BI login reads the marts and is refused the raw events. With the loader's URL alone
the marts step fails at once (no retry), on one line that says what to do."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance
from psycopg import sql
from sqlalchemy.engine import make_url

from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.migrations import discover_migrations
from tests import REPO
from tests.integration.conftest import simulator_days
from tests.integration.test_readme_queries import fenced_sql_blocks, split_statements

pytestmark = pytest.mark.integration

GUIDE = REPO / "deploy" / "README.md"
PLACEHOLDER = re.compile(r"<[a-z ]*password>")


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _login_statements() -> list[str]:
    """The guide's `create role ... login` statements, in order."""
    blocks = [body for _, body in fenced_sql_blocks(_guide()) if "create role" in body]
    assert len(blocks) == 1, "deploy/README.md has one SQL block creating the logins"
    return [statement for _, statement in split_statements(blocks[0])]


def _env_file_url(variable: str) -> str:
    """A variable of the guide's env file, e.g. DATABASE_URL=postgresql://etl_loader:<..>@..."""
    # (the owner's `DATABASE_URL=... \` before `migrate` continues on the next line)
    found = re.search(rf"^{variable}=([^\\\n]+?)\s*$", _guide(), re.MULTILINE)
    assert found, f"deploy/README.md's env file sets {variable}"
    return found[1]


def _on_test_database(guide_url: str, database_url: str, password: str) -> str:
    """The guide's URL (its login) on the test's server and database."""
    login = make_url(PLACEHOLDER.sub("x", guide_url)).username
    url = make_url(database_url).set(username=login, password=password)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def guide_logins(database_url: str) -> Iterator[list[str]]:
    """Drops the guide's logins before and after (roles are shared by the server's databases)."""
    names = [
        re.match(r"create role (\w+)", s)[1]  # type: ignore[index]
        for s in _login_statements()
    ]

    def drop() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))

    drop()
    yield names
    drop()


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return tmp_path


def test_the_deploy_guide_runs_as_written(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    database_url: str,
    guide_logins: list[str],
    dagster_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    guide = _guide()
    # 1. the owner (the test database's owner) applies the schema and the roles
    assert "modelarts-etl migrate --grants" in guide
    assert main(["migrate", "--grants"]) == 0
    assert "applied grant_transformer.sql" in capsys.readouterr().out

    # 2. the owner creates the guide's logins, a password in place of each placeholder
    password = secrets.token_hex(12)
    with psycopg.connect(database_url, autocommit=True) as owner:
        for statement in _login_statements():
            owner.execute(PLACEHOLDER.sub(password, statement).encode())
    assert guide_logins == ["etl_loader", "etl_transformer", "metabase"]

    loader = _on_test_database(_env_file_url("DATABASE_URL"), database_url, password)
    transformer = _on_test_database(_env_file_url("ANALYTICS_DATABASE_URL"), database_url, password)
    day = simulator_days(simulator)[1]

    # 3. the loader alone, without the transformer's URL: the marts fail at once, one line
    env_loader_only = {**pipeline_env, "DATABASE_URL": loader}
    monkeypatch.delenv("ANALYTICS_DATABASE_URL", raising=False)
    failed = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "rerun", day],
        env={**os.environ, **env_loader_only},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "Traceback" not in output and password not in output
    cause = [line for line in output.splitlines() if "permission denied" in line]
    assert len(cause) == 1, output
    assert (
        "permission denied for schema analytics as role etl_loader (DATABASE_URL): "
        "set ANALYTICS_DATABASE_URL to a login in role modelarts_transformer" in cause[0]
    )
    assert failed.stderr == "", failed.stderr  # nothing else: no Dagster error log, no retries
    run_id = re.search(r"run (\S+) FAILED", failed.stdout)
    assert run_id, failed.stdout
    attempts = _step_events(dagster_home, run_id[1])
    assert attempts[DagsterEventType.STEP_START] == 2  # service_events, deployment_marts once
    assert attempts[DagsterEventType.STEP_RESTARTED] == 0
    assert attempts[DagsterEventType.STEP_UP_FOR_RETRY] == 0
    assert attempts[DagsterEventType.STEP_FAILURE] == 1

    # 4. the guide's env file: loader and transformer; the day loads and its marts build
    monkeypatch.setenv("DATABASE_URL", loader)
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", transformer)
    assert main(["rerun", day]) == 0, capsys.readouterr()
    assert "succeeded" in capsys.readouterr().out

    # 5. neither login may do the owner's work, and each is told so in one line
    assert main(["migrate", "--grants"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "as role etl_loader (DATABASE_URL): run `modelarts-etl " in err
    assert "with DATABASE_URL of the warehouse's owner" in err

    # an upgrade whose migration the owner has not applied yet (0007 made pending again):
    # the loader's run stops before it starts, naming the owner's command
    last = discover_migrations()[-1].version
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute("delete from schema_migrations where version = %s", (last,))
    stale = subprocess.run(  # a new process: this one has checked the loader's schema already
        [sys.executable, "-m", "pipelines.cli", "rerun", day],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert stale.returncode == 1, stale.stdout + stale.stderr
    out, err = stale.stdout, stale.stderr
    assert err.count("\n") == 1 and "Traceback" not in err and "--debug" not in err
    assert f"migration {last}_" in err and "run `modelarts-etl migrate` as the schema owner" in err
    assert "succeeded" not in out and "FAILED" not in out  # no run
    monkeypatch.setenv("DATABASE_URL", database_url)  # the owner
    assert main(["migrate"]) == 0
    assert f"migrations applied: {last}" in capsys.readouterr().out
    monkeypatch.setenv("DATABASE_URL", loader)

    # 6. the BI login reads the marts, and nothing raw
    bi = _on_test_database("postgresql://metabase@h/db", database_url, password)
    monkeypatch.setenv("DATABASE_URL", bi)
    assert main(["status"]) == 1  # the operator views read the raw layer
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "permission denied for table schema_migrations as role metabase (DATABASE_URL)" in err
    with psycopg.connect(bi, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from analytics.deployment_attempts where attempt_date = %s", (day,)
        ).fetchone()
        assert row is not None and row[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from service_events")


def _step_events(home: Path, run_id: str) -> dict[DagsterEventType, int]:
    counts = dict.fromkeys(
        (
            DagsterEventType.STEP_START,
            DagsterEventType.STEP_RESTARTED,
            DagsterEventType.STEP_UP_FOR_RETRY,
            DagsterEventType.STEP_FAILURE,
        ),
        0,
    )
    with DagsterInstance.from_config(str(home)) as instance:
        for entry in instance.all_logs(run_id):
            kind = entry.dagster_event.event_type if entry.dagster_event else None
            if kind in counts:
                counts[kind] += 1
    return counts
