"""A settings error on Dagster's own path (`dagster asset materialize`, and so the UI's and the
daemon's run workers, which run the same multiprocess executor) fails the first step once, on one
line, and is not retried: Dagster retries a step whose resource failed to start whatever the
error, so the ModelArts resource leaves a missing variable to the step's `failing_fast`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance

from tests.integration.conftest import bare_environ

pytestmark = pytest.mark.integration

DAGSTER = str(Path(sys.executable).parent / "dagster")


@pytest.mark.usefixtures("engine")  # a migrated warehouse: only the API's settings are missing
def test_a_missing_api_setting_fails_the_first_step_once(database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **bare_environ(),  # no MODELARTS_* / HUAWEICLOUD_* variable
        "HOME": str(tmp_path),  # no ~/.huaweicloud/credentials either
        "DAGSTER_HOME": str(home),
        "DATABASE_URL": database_url,
    }
    done = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions",
         "--select", "service_events", "--partition", "2026-11-18"],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]

    with DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
    kinds = [e.event_type for e in events if e.step_key == "service_events"]
    assert kinds.count(DagsterEventType.STEP_UP_FOR_RETRY) == 0, kinds
    assert kinds.count(DagsterEventType.STEP_RESTARTED) == 0, kinds
    assert kinds.count(DagsterEventType.STEP_FAILURE) == 1, kinds
    [failure] = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data
    assert data is not None and data.user_failure_data is not None
    description = data.user_failure_data.description or ""
    # the settings error itself, on one line: what to set
    assert description.startswith("MODELARTS_ENDPOINT or HUAWEICLOUD_REGION must be set"), (
        description
    )
    assert "\n" not in description
