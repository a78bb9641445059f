"""Operator mistakes end a command with one line on stderr and a non-zero exit, checked before
anything starts; --debug keeps the traceback. And `db` gives BI tools a way in."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pipelines.cli import main
from pipelines.settings import ConfigError
from pipelines.warehouse.database import resolve_database_url
from tests.integration.conftest import OneLineError, bare_environ, free_port

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-pass-9"
TODAY = datetime.now(UTC).date()

CASES = [
    # (environment, argv, exit code, the line says)
    ({"DATABASE_URL": f"postgresql://etl:{PASSWORD}@127.0.0.1:9/wh"}, ["status"], 1,
     "cannot reach the warehouse at 127.0.0.1:9/wh (DATABASE_URL)"),
    ({"MODELARTS_ENDPOINT": "http://127.0.0.1:9", "MODELARTS_PROJECT_ID": "p",
      "HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"},
     ["verify", "2026-11-19"], 1, "cannot reach 127.0.0.1:9 (MODELARTS_ENDPOINT)"),
    ({"MODELARTS_PAGE_LIMIT": "5"}, ["verify", "2026-11-19"], 2,
     "MODELARTS_PAGE_LIMIT must be 10..1000, not 5"),
    ({"MODELARTS_WORKERS": "0"}, ["run"], 2, "MODELARTS_WORKERS must be 1..64, not 0"),
    ({"MODELARTS_OFFSET_MODE": "pages"}, ["rerun", "2026-11-19"], 2,
     "MODELARTS_OFFSET_MODE must be 'page' or 'record', not 'pages'"),
    ({"PIPELINES_WAIT_TIMEOUT_S": "soon"}, ["backfill", "--start", "2026-11-18", "--end",
     "2026-11-19"], 2, "PIPELINES_WAIT_TIMEOUT_S must be an integer 1..2000000, not 'soon'"),
    ({}, ["rerun", "2030-01-01"], 2, "2030-01-01 has not ended yet (UTC)"),
    ({}, ["run", "--start", "2030-01-01"], 2, "2030-01-01 has not ended yet (UTC)"),
    ({}, ["verify", TODAY.isoformat()], 2, f"{TODAY} has not ended yet (UTC)"),
    ({}, ["backfill", "--start", "2023-12-30", "--end", "2024-01-02"], 2,
     "2023-12-30 is before the first partition 2024-01-01 (set PIPELINES_PARTITIONS_START"),
    ({}, ["backfill", "--start", "2026-11-19", "--end", "2026-11-18"], 2,
     "--end 2026-11-18 is before --start 2026-11-19"),
    ({"DAGSTER_PG_URL": "postgresql://x@127.0.0.1:9/d"}, ["status"], 2,
     "DATABASE_URL is not set and DAGSTER_PG_URL says this is a deployment"),
]  # fmt: skip


@pytest.mark.parametrize(("env", "argv", "code", "says"), CASES)
@pytest.mark.usefixtures("clean_env")
def test_a_mistake_is_one_line_and_an_exit_code_before_anything_starts(
    env: dict[str, str], argv: list[str], code: int, says: str, one_line_error: OneLineError
) -> None:
    err = one_line_error(env, argv, code)
    assert says in err
    assert PASSWORD not in err


@pytest.mark.usefixtures("clean_env")
def test_debug_keeps_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELARTS_WORKERS", "0")
    with pytest.raises(ValueError, match=r"MODELARTS_WORKERS must be 1\.\.64"):
        main(["run", "--debug"])


def test_a_bad_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rerun", "2026-11-31"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == "modelarts-etl rerun: error: argument DAY: '2026-11-31' is not a day YYYY-MM-DD\n"


def test_db_serves_the_embedded_warehouse_to_bi_tools_over_tcp(tmp_path: Path) -> None:
    env = {**bare_environ(), "PIPELINES_DATA_DIR": str(tmp_path / "data")}
    port = free_port()
    # `db` only reads: the schema comes from `migrate` (or a run)
    migrate = [sys.executable, "-m", "pipelines.cli", "migrate"]
    subprocess.run(migrate, env=env, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    server = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "db", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = []
        deadline = datetime.now(UTC) + timedelta(minutes=3)
        while datetime.now(UTC) < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if line.startswith("BI tools") or not line:
                break
        url = f"postgresql://postgres@127.0.0.1:{port}/modelarts_warehouse"
        assert any(url in line for line in lines), lines
        with psycopg.connect(url, connect_timeout=10) as conn:
            # the warehouse, migrated: the marts a dashboard reads are there
            row = conn.execute("select count(*) from analytics.deployment_outcomes_daily")
            assert row.fetchone() == (0,)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_without_database_url_dagster_fails_closed_unless_embedded_is_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Inside Dagster (no CLI), a missing DATABASE_URL is an error, not a fresh local Postgres."""
    monkeypatch.delenv("PIPELINES_EMBEDDED", raising=False)
    with pytest.raises(ConfigError, match="DATABASE_URL is not set; set it, or set PIPELINES_EMB"):
        resolve_database_url(None, tmp_path)
    assert not (tmp_path / "pgdata").exists()
