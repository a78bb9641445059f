"""The CLI explains itself: every command has a description, dates give their format, simulator
options appear where a simulator starts; `dev` refuses a busy port at once; the local Dagster
instance keeps its storage under DAGSTER_HOME and shows no community modal."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pipelines import settings
from pipelines.cli import COMMANDS, main
from pipelines.cli.arguments import SIMULATOR_COMMANDS, demo_partitions
from pipelines.cli.dev import WORKSPACE_YAML
from tests import REPO


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_describes_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    summary = _help(capsys)
    listed = [line.split(None, 1) for line in summary.splitlines() if line.startswith("    ")]
    assert [command, True] in [[words[0], len(words) == 2] for words in listed if words]
    text = _help(capsys, command)
    description = text.split("\n\n")[1]  # after the usage paragraph
    assert len(description.split()) >= 8, text
    sim_options = ("--sim-services N", "--sim-days N", "--sim-seed N")
    if command in SIMULATOR_COMMANDS:
        assert "Started when MODELARTS_ENDPOINT is unset" in text
        assert all(f"{option}  " in text for option in sim_options), text  # each with help
    else:
        assert "--sim-" not in text


def test_days_give_their_format_and_run_its_default_range(
    capsys: pytest.CaptureFixture[str],
) -> None:
    backfill = _help(capsys, "backfill")
    assert "--start YYYY-MM-DD --end YYYY-MM-DD" in backfill
    assert "usage: modelarts-etl rerun [-h] [--debug]" in _help(capsys, "rerun")
    for command in ("rerun", "verify"):
        assert "DAY the UTC day, YYYY-MM-DD" in " ".join(_help(capsys, command).split())
    run = " ".join(_help(capsys, "run").split())
    assert (
        "Default range: the simulator's days when the simulator is started, else the 7 days" in run
    )
    # the per-day rows are explained, and the attempts come from the mart
    assert "analytics.deployment_outcomes_daily" in run
    assert "`modelarts-etl rerun DAY`" in " ".join(_help(capsys, "verify").split())


def test_dev_on_a_busy_port_is_one_line_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["dev", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert err == (
        f"modelarts-etl dev: error: port {port} on 127.0.0.1 is not free (Address already in "
        "use): stop what listens there, or use --port N\n"
    )
    assert out == ""  # no simulator, no database, no UI URL


def test_dev_loads_the_code_location_of_workspace_yaml() -> None:
    checkout = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert yaml.safe_load(WORKSPACE_YAML) == checkout
    assert checkout["load_from"][0]["python_module"]["location_name"] == "modelarts_events"


def test_the_demo_partitions_are_the_simulators_days(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (settings.MODELARTS_ENDPOINT, "DAGSTER_PG_URL", settings.PARTITIONS_START):
        monkeypatch.delenv(var, raising=False)
    demo_partitions(argparse.Namespace(command="dev", sim_days=7))
    first = datetime.now(UTC).date() - timedelta(days=7)
    assert os.environ[settings.PARTITIONS_START] == first.isoformat()
    # a configured API, or a first day set by the operator, is left alone
    monkeypatch.setenv(settings.PARTITIONS_START, "2025-01-01")
    demo_partitions(argparse.Namespace(command="dev", sim_days=3))
    assert os.environ[settings.PARTITIONS_START] == "2025-01-01"


@pytest.mark.parametrize("config", ["dagster.yaml", "deploy/dagster.yaml"])
def test_instance_configs_follow_dagster_home(config: str) -> None:
    text = (REPO / config).read_text()
    parsed = yaml.safe_load(text)
    assert "base_dir" not in text  # Dagster's defaults: everything under DAGSTER_HOME
    assert parsed["nux"] == {"enabled": False}
    assert parsed["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_two_dagster_homes_are_two_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance, DagsterRun

    monkeypatch.chdir(tmp_path)  # one working directory for both
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(homes[0])) as first:
        first.add_run(DagsterRun(job_name="probe", run_id="probe-run"))
    with DagsterInstance.from_config(str(homes[1])) as second:
        assert second.get_runs_count() == 0
    with DagsterInstance.from_config(str(homes[0])) as first:
        assert first.get_runs_count() == 1
    assert (homes[0] / "history" / "runs.db").is_file()
    assert not (tmp_path / ".data").exists() and not (tmp_path / "history").exists()
