"""Simulator over HTTP -> Dagster assets (service_events, then the deployment marts) -> the
marts equal the simulator's served truth; checks pass; metadata carries the preview and chart."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from dagster import AssetCheckSeverity, DagsterInstance, materialize
from sqlalchemy import Engine

from pipelines.assets.deployments import deployment_marts
from pipelines.assets.events import service_events, services
from pipelines.definitions import build_resources
from pipelines.simulator.models import AttemptTruth, PhaseTruth
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.database import create_warehouse_engine
from tests.integration.conftest import simulator_days
from tests.integration.test_deployment_marts import assert_marts_equal_truth, snapshot

pytestmark = pytest.mark.integration

ASSETS = [services, service_events, deployment_marts]
MART_KEYS = [key.to_user_string() for key in deployment_marts.keys]


def served_truth(info: SimulatorInfo) -> list[AttemptTruth]:
    body: list[dict[str, Any]] = requests.get(f"{info.url}/_sim/truth", timeout=30).json()
    return [
        AttemptTruth(
            **{
                **a,
                "models": tuple(a["models"]),
                "phases": tuple(PhaseTruth(**p) for p in a["phases"]),
            }
        )
        for a in body
    ]


def _materialize_marts(day: str, instance: DagsterInstance) -> Any:
    result = materialize(
        ASSETS,
        selection=MART_KEYS,
        partition_key=day,
        instance=instance,
        resources=build_resources(),
    )
    assert result.success
    return result


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_marts_through_dagster_equal_the_served_truth(
    simulator: SimulatorInfo, pipeline_env: dict[str, str]
) -> None:
    instance = DagsterInstance.ephemeral()
    resources = build_resources()
    assert materialize(
        ASSETS, selection=["services"], instance=instance, resources=resources
    ).success
    days = simulator_days(simulator)
    results = []
    for day in days:
        assert materialize(
            ASSETS,
            selection=["service_events"],
            partition_key=day,
            instance=instance,
            resources=resources,
        ).success
        results.append(_materialize_marts(day, instance))

    engine: Engine = create_warehouse_engine(pipeline_env["DATABASE_URL"])
    try:
        assert_marts_equal_truth(engine, served_truth(simulator))
        before = snapshot(engine)
        rerun = _materialize_marts(days[1], instance)
        assert snapshot(engine) == before
    finally:
        engine.dispose()

    last = results[-1]
    checks = {c.check_name: c for c in last.get_asset_check_evaluations()}
    assert set(checks) == {
        "every_start_has_its_attempt",
        "no_orphan_phases",
        "outcomes_reconcile_with_attempts",
        "unclassified_share_below_threshold",
    }
    assert all(c.passed for c in checks.values())
    assert checks["unclassified_share_below_threshold"].severity == AssetCheckSeverity.WARN
    assert all(c.passed for c in rerun.get_asset_check_evaluations())

    outcomes = last.asset_materializations_for_node("deployment_marts")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in outcomes}
    assert set(by_key) == set(MART_KEYS)
    trend = by_key["deployment_outcomes_daily"]["trend"].value
    assert all(day in trend for day in days) and "█" in trend
    assert "| cause | phase |" in by_key["deployment_failure_causes_daily"]["preview"].value
    assert days[-2] in str(by_key["deployment_attempts"]["days_rebuilt"].value)
