"""`status` checks the API's credentials with one cheap call (the first page of the service
listing, no retry) and says what came of it: accepted, refused (a wrong SK: exit 1), not usable
(a metadata service that does not answer: exit 1), or not checked (the API down). Piped into
`head`, it ends quietly with exit 0. And the nightly job keeps the `services` asset
materialized."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster import AssetKey, DagsterInstance, materialize

from pipelines.assets.deployments import deployment_marts
from pipelines.assets.events import service_events, services
from pipelines.assets.report import deployment_report
from pipelines.cli import main
from pipelines.definitions import build_resources
from pipelines.simulator.process import SimulatorInfo
from tests.integration.conftest import free_port, simulator_days

pytestmark = pytest.mark.integration


def _listing_calls(info: SimulatorInfo) -> int:
    stats: dict[str, Any] = requests.get(f"{info.url}/_sim/stats", timeout=30).json()
    return sum(stats["requests"].get("services", {}).values())  # the service listing's pages


@pytest.mark.usefixtures("engine")
def test_status_checks_the_credentials_with_one_listing_call(
    simulator: SimulatorInfo, pipeline_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _listing_calls(simulator)
    assert main(["status"]) == 0
    api = capsys.readouterr().out.splitlines()[0]
    assert "credentials: AK/SK " in api and api.endswith(": accepted (one listing call)"), api
    assert _listing_calls(simulator) == before + 1


@pytest.mark.usefixtures("engine")
def test_status_says_when_the_sk_is_wrong(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "not-the-secret-key-" + "x" * 20)
    assert main(["status"]) == 1
    api = capsys.readouterr().out.splitlines()[0]
    assert ": REFUSED: " in api and "accepted" not in api, api
    assert "not-the-secret-key" not in api


@pytest.mark.usefixtures("engine")
def test_status_says_when_the_metadata_service_is_down(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"):
        monkeypatch.setenv(var, "")
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HUAWEICLOUD_METADATA_ENDPOINT", down)
    assert main(["status"]) == 1
    api = capsys.readouterr().out.splitlines()[0]
    assert ": NOT USABLE: the ECS metadata service at " + down in api, api


@pytest.mark.usefixtures("engine")
def test_status_says_when_it_could_not_check(
    pipeline_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODELARTS_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing there
    assert main(["status"]) == 0  # the warehouse's days are still shown
    api = capsys.readouterr().out.splitlines()[0]
    assert ": not checked (the API did not answer: " in api, api


@pytest.mark.usefixtures("engine")
def test_status_piped_into_head_is_not_an_error(
    database_url: str, pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    # 1,000+ days of rows: more than a pipe holds, so the writer meets the closed pipe
    status = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "status", "--start", "2024-01-01",
         "--end", "2026-11-19"],
        env=dict(os.environ), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert status.stdout is not None and status.stderr is not None
    first = status.stdout.readline()  # what `head -1` reads, then it goes away
    status.stdout.close()
    code = status.wait()
    err = status.stderr.read().decode()
    status.stderr.close()
    assert first.startswith(b"api: ")
    assert code == 0 and err == "", err


def test_the_nightly_job_keeps_services_materialized(
    simulator: SimulatorInfo, pipeline_env: dict[str, str], engine: object, tmp_path: Path
) -> None:
    os.environ["PIPELINES_DATA_DIR"] = str(tmp_path)
    instance = DagsterInstance.ephemeral()
    assets = [services, service_events, deployment_marts, deployment_report]
    day = simulator_days(simulator)[1]
    # what the nightly job selects: service_events and what is downstream of it, not `services`
    result = materialize(
        assets,
        selection=["service_events"],
        partition_key=day,
        instance=instance,
        resources=build_resources(),
    )
    assert result.success
    event = instance.get_latest_materialization_event(AssetKey("services"))
    assert event is not None and event.run_id == result.run_id
    assert event.asset_materialization is not None
    listed = event.asset_materialization.metadata["services"].value
    assert listed == simulator.services
