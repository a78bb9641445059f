"""The operator commands against the simulator and a test database: status, verify, rerun."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.migrations import discover_migrations
from tests.integration.conftest import simulator_days

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env(
    pipeline_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return pipeline_env


def _rows(out: str, day: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(day)]


def test_status_verify_and_rerun(
    simulator: SimulatorInfo, operator_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    days = simulator_days(simulator)
    first, last = days[0], days[-1]

    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["status", "--start", first, "--end", last]) == 0
    before = capsys.readouterr().out
    assert all("never" in _rows(before, d)[0] for d in days)

    assert main(["run", "--start", first, "--end", first]) == 0
    capsys.readouterr()
    # a CLI run captures no compute logs (pipelines/cli/runs.py): no files, no tail processes
    home = Path(os.environ["DAGSTER_HOME"])
    assert (home / "history").is_dir()  # the run is stored in this instance
    assert not list(home.glob("storage/**/compute_logs/*"))
    assert main(["status", "--start", first, "--end", last]) == 0
    after = capsys.readouterr().out
    loaded = _rows(after, first)[0].split()
    assert loaded[1:3] == ["loaded", "succeeded"] and int(loaded[-3]) > 0  # events stored
    assert loaded[-2] == "v1"  # the event text rules that built the day's marts
    assert "never" in _rows(after, last)[0]

    assert main(["verify", first]) == 0  # every service's stored count equals the API's
    verified = capsys.readouterr().out
    assert "0 differ" in verified

    assert main(["verify", last]) == 1  # nothing loaded yet for that day: a clear difference
    out = capsys.readouterr().out
    assert "DIFFERS" in out and f"`modelarts-etl rerun {last}` loads the day again" in out

    assert main(["rerun", last]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out
    # progress: the day's row as its load commits (day, services, fetched, inserted, ...)
    row = _rows(out, last)[0].split()
    assert int(row[2]) > 0 and int(row[3]) == int(row[2])  # first load: all fetched inserted
    # then the day's deployment attempts, as the mart holds them
    outcomes = _rows(out, last)[1].split()
    with psycopg.connect(operator_env["DATABASE_URL"]) as conn:
        stored = conn.execute(
            "select count(*), count(*) filter (where outcome = 'succeeded')"
            " from analytics.deployment_attempts where attempt_date = %s",
            (last,),
        ).fetchone()
    assert stored is not None and stored[0] > 0
    assert (int(outcomes[1]), int(outcomes[2])) == stored
    assert main(["verify", last]) == 0


def test_migrate_applies_the_schema_and_the_roles(
    operator_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--grants"]) == 0
    out = capsys.readouterr().out
    assert "migrations applied: 0001" in out
    for script in ("grant_loader.sql", "grant_transformer.sql", "grant_analytics_reader.sql"):
        assert f"applied {script}" in out
    assert main(["migrate"]) == 0
    assert "none pending" in capsys.readouterr().out


def _tables(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select n.nspname || '.' || c.relname from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')"
        ).fetchall()
        schemas = conn.execute("select nspname from pg_namespace where nspname = 'analytics'")
        return [r[0] for r in rows] + [r[0] for r in schemas.fetchall()]


def test_read_only_commands_never_change_the_schema(
    simulator: SimulatorInfo,
    operator_env: dict[str, str],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    day = simulator_days(simulator)[0]
    versions = [m.version for m in discover_migrations()]
    pending = f"has {len(versions)} pending migration(s) ({versions[0]}..{versions[-1]})"
    for argv in (["status"], ["verify", day]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"modelarts-etl {argv[0]}: error: "), err
        assert f"{pending}: `modelarts-etl migrate` applies them" in err
    assert main(["db", "--print-only"]) == 0
    assert pending in capsys.readouterr().out
    assert _tables(database_url) == []  # not even schema_migrations

    assert main(["migrate"]) == 0
    capsys.readouterr()
    migrated = _tables(database_url)
    assert main(["status"]) == 0 and main(["db", "--print-only"]) == 0
    assert "pending" not in capsys.readouterr().out
    assert _tables(database_url) == migrated
