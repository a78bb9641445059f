"""The fenced patch of Dagster's wait for a pool slot (pipelines/pool_wait.py): refused on a
Dagster whose private class changed, installed where runs execute and not by loading the
definitions; and the run tags the project sets are Dagster's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster
import pytest
from dagster._core.execution.plan.instance_concurrency_context import (
    InstanceConcurrencyContext,
)
from dagster._core.storage import tags as dagster_tags

from pipelines import pool_wait, run_tags
from tests import REPO


def test_the_installed_dagster_is_the_one_the_patch_was_written_for() -> None:
    pool_wait.check_private_api()  # raises PrivateApiChanged otherwise


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """As before any install: check_private_api looks at the class itself."""
    monkeypatch.setattr(pool_wait, "_installed", {})


def test_another_dagster_release_is_refused(
    monkeypatch: pytest.MonkeyPatch, unpatched: None
) -> None:
    monkeypatch.setattr(dagster, "__version__", "1.14.0")
    with pytest.raises(pool_wait.PrivateApiChanged, match=r"Dagster 1\.14\.0 is not 1\.13\.x"):
        pool_wait.check_private_api()


def test_a_changed_method_is_refused(monkeypatch: pytest.MonkeyPatch, unpatched: None) -> None:
    def claim(self: Any, concurrency_key: str, step_key: str, priority: int = 0) -> bool:
        return True

    monkeypatch.setattr(InstanceConcurrencyContext, "claim", claim)
    monkeypatch.delattr(InstanceConcurrencyContext, "interval_to_next_pending_claim_check")
    with pytest.raises(pool_wait.PrivateApiChanged) as refused:
        pool_wait.check_private_api()
    assert "claim takes ['self', 'concurrency_key', 'step_key', 'priority']" in str(refused.value)
    assert "no method interval_to_next_pending_claim_check" in str(refused.value)


PROBE = """
import json, sys, tempfile
from dagster import execute_job, instance_for_test, job, op, reconstructable
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
import pipelines.definitions
from pipelines.pool_wait import pool_wait_executor

after_definitions = InstanceConcurrencyContext.claim.__module__

@op
def one() -> int:
    return 1

@job(executor_def=pool_wait_executor)
def probe_job() -> None:
    one()

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as home, instance_for_test(temp_dir=home) as instance:
        with execute_job(reconstructable(probe_job), instance=instance) as result:
            ok = result.success
    print(json.dumps([after_definitions, InstanceConcurrencyContext.claim.__module__, ok]))
"""


def test_loading_the_definitions_does_not_patch_a_run_worker_does(tmp_path: Path) -> None:
    script = tmp_path / "probe_pool_wait.py"
    script.write_text(PROBE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after_definitions, after_run, ok = json.loads(done.stdout.splitlines()[-1])
    assert after_definitions.startswith("dagster.")  # the definitions loaded: not patched
    assert after_run == "pipelines.pool_wait"  # the executor of a run installed the patch
    assert ok


def test_the_definitions_run_on_the_guarded_executor() -> None:
    from pipelines.definitions import defs

    assert defs.resolve_job_def("nightly").executor_def is pool_wait.pool_wait_executor


def test_the_dagster_tags_the_project_names_are_dagsters() -> None:
    assert run_tags.PARTITION == dagster_tags.PARTITION_NAME_TAG
    assert run_tags.PARTITION_RANGE_START == dagster_tags.ASSET_PARTITION_RANGE_START_TAG
    assert run_tags.PARTITION_RANGE_END == dagster_tags.ASSET_PARTITION_RANGE_END_TAG
    assert run_tags.SCHEDULE_NAME == dagster_tags.SCHEDULE_NAME_TAG
