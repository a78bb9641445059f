"""The marts of each day rebuilt in the load step as its loads commit (pipelines/assets/
step_marts.py): a range run's marts equal the simulator's truth, the marts step has nothing left
to rebuild, and a pass reads one snapshot taken after it holds the marts' lock."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import Engine

from pipelines import run_tags
from pipelines.assets.step_marts import REBUILT_IN_LOAD_STEP
from pipelines.definitions import build_definitions, build_resources
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.transactions import locked_snapshot_transaction, pooled_connection
from tests.integration.conftest import simulator_days
from tests.integration.test_deployment_assets import ASSETS, served_truth
from tests.integration.test_deployment_marts import assert_marts_equal_truth

pytestmark = pytest.mark.integration

LOCK_KEY = 4_242_001
MART_CHECKS = {
    "every_start_has_its_attempt",
    "no_orphan_phases",
    "outcomes_reconcile_with_attempts",
    "unclassified_share_below_threshold",
}


def _metadata(result: Any, node: str) -> dict[str, dict[str, Any]]:
    return {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(node)
    }


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_a_range_run_rebuilds_each_days_marts_in_the_load_step(
    simulator: SimulatorInfo, pipeline_env: dict[str, str]
) -> None:
    days = simulator_days(simulator)
    assert len(days) >= 2
    job = build_definitions().resolve_job_def("nightly")
    result = job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={run_tags.PARTITION_RANGE_START: days[0], run_tags.PARTITION_RANGE_END: days[-1]},
        raise_on_error=False,
    )
    assert result.success

    events = _metadata(result, "service_events")["service_events"]
    assert events[REBUILT_IN_LOAD_STEP] == ", ".join(days)
    assert events["marts_passes_in_load_step"] >= 1
    marts = _metadata(result, "deployment_marts")["deployment_attempts"]
    # the marts step found every day rebuilt and nothing queued: it rebuilt nothing again
    assert marts["days_rebuilt_in_load_step"] == ", ".join(days)
    assert marts["passes"] == 0
    assert marts["days_rebuilt"] == ""
    # the marts' checks (not service_events' retention check, which reads today's date)
    checks = [c for c in result.get_asset_check_evaluations() if c.check_name in MART_CHECKS]
    assert {c.check_name for c in checks} == MART_CHECKS
    failed = [f"{c.check_name}: {c.metadata}" for c in checks if not c.passed]
    assert failed == []

    engine: Engine = create_warehouse_engine(pipeline_env["DATABASE_URL"])
    try:
        assert_marts_equal_truth(engine, served_truth(simulator))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select count(*) from mart_rebuild_queue").scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.usefixtures("engine")
def test_a_run_of_the_events_alone_leaves_the_marts_to_their_step(
    simulator: SimulatorInfo, pipeline_env: dict[str, str]
) -> None:
    day = simulator_days(simulator)[0]
    result = materialize(
        ASSETS,
        selection=["service_events"],
        partition_key=day,
        instance=DagsterInstance.ephemeral(),
        resources=build_resources(),
    )
    assert result.success
    assert _metadata(result, "service_events")["service_events"][REBUILT_IN_LOAD_STEP] == ""
    engine: Engine = create_warehouse_engine(pipeline_env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            attempts = conn.exec_driver_sql("select count(*) from analytics.deployment_attempts")
            assert attempts.scalar() == 0
            queued = conn.exec_driver_sql("select count(*) from mart_rebuild_queue").scalar()
            assert queued and queued > 0
    finally:
        engine.dispose()


def test_a_locked_snapshot_sees_one_snapshot_taken_after_the_lock(
    engine: Engine, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("drop table if exists step_marts_probe")
        other.execute("create table step_marts_probe (n int)")
        other.execute("insert into step_marts_probe values (1)")
        seen_by_second: list[int] = []
        second_started = threading.Event()

        def second() -> None:
            second_started.set()
            with locked_snapshot_transaction(engine, LOCK_KEY) as conn:
                row = conn.execute("select count(*) from step_marts_probe").fetchone()
                assert row is not None
                seen_by_second.append(row[0])

        with locked_snapshot_transaction(engine, LOCK_KEY) as conn:
            level = conn.execute("show transaction_isolation").fetchone()
            assert level == ("repeatable read",)
            assert conn.execute("select count(*) from step_marts_probe").fetchone() == (1,)
            other.execute("insert into step_marts_probe values (2)")  # commits now
            # the same snapshot: the committed row is not seen inside the block
            assert conn.execute("select count(*) from step_marts_probe").fetchone() == (1,)
            conn.execute("insert into step_marts_probe values (3)")
            waiter = threading.Thread(target=second)
            waiter.start()
            second_started.wait(10)
            time.sleep(0.3)  # the second transaction is waiting for the lock, not reading
            assert seen_by_second == []
        waiter.join(30)
        # it took its snapshot once it held the lock: both committed rows are in it
        assert seen_by_second == [3]
        locks = other.execute(
            "select count(*) from pg_locks where locktype = 'advisory'"
            " and (classid::bigint << 32) + objid::bigint = %s",
            (LOCK_KEY,),
        ).fetchone()
        assert locks == (0,)
        other.execute("drop table step_marts_probe")
    # the pooled connection is back at the server's default isolation
    with pooled_connection(engine) as conn:
        assert conn.execute("show transaction_isolation").fetchone() == ("read committed",)
