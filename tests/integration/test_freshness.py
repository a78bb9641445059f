"""Freshness of the daily assets: a FreshnessPolicy on each, evaluated by the Dagster daemon's
freshness loop on the local instance config, with no sensor to turn on. The code location is
loaded from workspace.yaml as `dagster-daemon run` loads it; time is frozen for the evaluation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    EventLogEntry,
)
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import StepMaterializationData
from dagster._core.storage.dagster_run import make_new_run_id
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.freshness import FreshnessDaemon

from pipelines.definitions import DAILY_FRESHNESS, build_definitions
from tests import REPO
from tests.integration.conftest import MARTS

pytestmark = pytest.mark.integration

DAILY_KEYS = [AssetKey(name) for name in ("service_events", *MARTS, "deployment_report")]
DAY = datetime(2026, 11, 20, tzinfo=UTC)  # "today" of the scenarios


def test_every_daily_asset_carries_the_policy_and_nothing_else_does() -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    policies = {key: graph.get(key).freshness_policy for key in graph.get_all_asset_keys()}
    assert {k for k, p in policies.items() if p is not None} == set(DAILY_KEYS)
    assert {policies[k] for k in DAILY_KEYS} == {DAILY_FRESHNESS}
    assert DAILY_FRESHNESS.deadline_cron == "0 3 * * *"
    assert DAILY_FRESHNESS.timezone == "UTC"
    assert DAILY_FRESHNESS.lower_bound_delta == timedelta(hours=3)
    # the superseded freshness checks and their sensor are gone
    assert not any("freshness" in k.name for k in graph.asset_check_keys)
    assert [s.name for s in defs.sensors or []] == ["alert_on_run_failure", "catch_up_missed_days"]


@pytest.fixture
def local_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    """An instance on the repository's own dagster.yaml (its storage under DAGSTER_HOME)."""
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        yield instance


@pytest.fixture
def workspace(local_instance: DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    target = WorkspaceFileTarget(paths=[str(REPO / "workspace.yaml")])
    with create_test_daemon_workspace_context(target, local_instance) as context:
        yield context


def _materialized(instance: DagsterInstance, key: AssetKey, partition: str, at: datetime) -> None:
    """Record a materialization of `key` at time `at` (what a run's step writes)."""
    instance.store_event(
        EventLogEntry(
            error_info=None,
            user_message="",
            level="debug",
            run_id=make_new_run_id(),
            timestamp=at.timestamp(),
            dagster_event=DagsterEvent(
                DagsterEventType.ASSET_MATERIALIZATION.value,
                "service_events",
                event_specific_data=StepMaterializationData(
                    materialization=AssetMaterialization(asset_key=key, partition=partition)
                ),
            ),
        )
    )


def _states_at(
    context: WorkspaceProcessContext, instance: DagsterInstance, now: datetime
) -> dict[AssetKey, FreshnessState]:
    """One iteration of the daemon's freshness loop at `now`; the state of every asset."""
    with freeze_time(now):
        list(FreshnessDaemon().run_iteration(context))
    records = instance.get_freshness_state_records([*DAILY_KEYS, AssetKey("services")])
    return {key: record.freshness_state for key, record in records.items()}


def test_the_local_instance_runs_the_freshness_daemon(local_instance: DagsterInstance) -> None:
    assert local_instance.freshness_enabled
    assert FreshnessDaemon.daemon_type() in local_instance.get_required_daemon_types()


def test_a_day_is_late_after_three_and_fresh_again_once_loaded(
    local_instance: DagsterInstance, workspace: WorkspaceProcessContext
) -> None:
    key = AssetKey("service_events")
    yesterday, before = (DAY - timedelta(days=1)), (DAY - timedelta(days=2))
    # the nightly run of yesterday loaded the day before yesterday at 00:40
    _materialized(local_instance, key, before.date().isoformat(), yesterday + timedelta(minutes=40))

    # before today's deadline the last one counts (yesterday 00:00-03:00): fresh
    assert _states_at(workspace, local_instance, DAY + timedelta(hours=2, minutes=59))[key] == (
        FreshnessState.PASS
    )
    # 03:00 passed and nothing loaded yesterday's partition since 00:00: late
    assert _states_at(workspace, local_instance, DAY + timedelta(hours=3, minutes=1))[key] == (
        FreshnessState.FAIL
    )
    # a rerun at 05:00 (say `modelarts-etl rerun`) makes it fresh until tomorrow's deadline
    _materialized(local_instance, key, yesterday.date().isoformat(), DAY + timedelta(hours=5))
    states = _states_at(workspace, local_instance, DAY + timedelta(hours=5, minutes=1))
    assert states[key] == FreshnessState.PASS
    assert _states_at(workspace, local_instance, DAY + timedelta(days=1, hours=3, minutes=1))[
        key
    ] == (FreshnessState.FAIL)


def test_the_nightly_run_before_the_deadline_keeps_every_daily_asset_fresh(
    local_instance: DagsterInstance, workspace: WorkspaceProcessContext
) -> None:
    yesterday = (DAY - timedelta(days=1)).date().isoformat()
    for key in DAILY_KEYS:  # the nightly job: service_events, then the marts and the report
        _materialized(local_instance, key, yesterday, DAY + timedelta(minutes=45))
    states = _states_at(workspace, local_instance, DAY + timedelta(hours=4))
    assert {states[key] for key in DAILY_KEYS} == {FreshnessState.PASS}
    # `services` is not daily: no policy, nothing to evaluate
    assert states.get(AssetKey("services"), FreshnessState.NOT_APPLICABLE) == (
        FreshnessState.NOT_APPLICABLE
    )
