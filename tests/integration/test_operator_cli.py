"""The operator commands against the simulator and a test database: status, verify, rerun."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo
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

    assert main(["status", "--start", first, "--end", last]) == 0
    before = capsys.readouterr().out
    assert all("never" in _rows(before, d)[0] for d in days)

    assert main(["run", "--start", first, "--end", first]) == 0
    capsys.readouterr()
    assert main(["status", "--start", first, "--end", last]) == 0
    after = capsys.readouterr().out
    loaded = _rows(after, first)[0].split()
    assert loaded[1] == "succeeded" and int(loaded[-3]) > 0  # events stored for the day
    assert loaded[-2] == "v1"  # the event text rules that built the day's marts
    assert "never" in _rows(after, last)[0]

    assert main(["verify", first]) == 0  # every service's stored count equals the API's
    verified = capsys.readouterr().out
    assert "0 differ" in verified

    assert main(["verify", last]) == 1  # nothing loaded yet for that day: a clear difference
    assert "DIFFERS" in capsys.readouterr().out

    assert main(["rerun", last]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out
    # progress: the day's row as its load commits (day, services, fetched, inserted, ...)
    row = _rows(out, last)[0].split()
    assert int(row[2]) > 0 and int(row[3]) == int(row[2])  # first load: all fetched inserted
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
