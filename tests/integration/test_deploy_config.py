"""The production configs load: deploy/dagster.yaml on a real Postgres, and the Kubernetes
run launcher and executor configs against dagster-k8s's own schemas."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.test_utils import create_run_for_test

from tests import REPO

pytestmark = pytest.mark.integration

DEPLOY = REPO / "deploy"


def test_production_instance_stores_runs_in_postgres(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", database_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        run = create_run_for_test(instance, job_name="nightly", status=DagsterRunStatus.SUCCESS)
        stored = instance.get_run_by_id(run.run_id)  # read back from Postgres
        assert stored is not None and stored.status == DagsterRunStatus.SUCCESS
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
        # the daemon evaluates the daily assets' freshness policies (no sensor to turn on)
        assert "FRESHNESS_DAEMON" in instance.get_required_daemon_types()


def test_kubernetes_instance_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_k8s import K8sRunLauncher

    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "x")
    config, _ = dagster_instance_config(str(DEPLOY / "k8s"), "dagster-instance.yaml")
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors


def test_kubernetes_executor_config_is_valid() -> None:
    from dagster_k8s import k8s_job_executor

    run_config = yaml.safe_load((DEPLOY / "k8s" / "k8s-job-executor.yaml").read_text())
    schema = k8s_job_executor.config_schema.as_field().config_type
    checked = process_config(schema, run_config["execution"]["config"])
    assert checked.success, checked.errors


def test_helm_values_name_the_code_location_module() -> None:
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "pipelines.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
