"""What killed runs leave behind (issue #12): Dagster runs left STARTED with pool slots claimed,
loads left `running`, day locks held; and waits for them that sleep, say what they wait for and
end. The end-to-end scenario (process groups SIGKILLed, then a run) is in tests/reliability."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    asset,
    execute_job,
    instance_for_test,
    job,
    materialize,
    multiprocess_executor,
    op,
    reconstructable,
)
from sqlalchemy import Engine

from pipelines import run_tags
from pipelines.assets.events import API_POOL
from pipelines.dagster_runs import process_tags, reclaim_dead_runs
from pipelines.operate import partition_status
from pipelines.pool_wait import install_pool_wait_guard
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import DAY_MS, LOAD_LOCK_CLASS, LoadLockTimeout, WindowLoad
from pipelines.warehouse.transactions import pooled_connection, transaction
from pipelines.windows import TimeWindow
from tests.integration.conftest import add_events

pytestmark = pytest.mark.integration

DAY = date(2025, 11, 28)
T0 = 1_764_288_000_000  # 2025-11-28T00:00:00Z
WINDOW = TimeWindow(T0, T0 + DAY_MS)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A SQLite instance with the pool limit of dagster.yaml (2 slots)."""
    with instance_for_test(
        temp_dir=str(tmp_path), overrides={"concurrency": {"pools": {"default_limit": 2}}}
    ) as inst:
        yield inst


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def _started_run(instance: DagsterInstance, tags: dict[str, str]) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(
        DagsterRun(job_name="nightly", run_id=run_id, status=DagsterRunStatus.STARTED, tags=tags)
    )
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(API_POOL)
    assert storage.claim_concurrency_slot(API_POOL, run_id, "service_events").is_claimed
    return run_id


def test_runs_of_dead_processes_are_failed_and_their_slots_freed(
    instance: DagsterInstance,
) -> None:
    dead_tags = {**process_tags(), run_tags.PID: str(_dead_pid())}
    dead = _started_run(instance, dead_tags)
    alive = _started_run(instance, process_tags())
    # both slots taken: a new step of the pool could only wait
    assert len(instance.event_log_storage.get_concurrency_info(API_POOL).claimed_slots) == 2

    reclaimed = reclaim_dead_runs(instance)

    assert reclaimed.failed_runs == [dead]
    assert reclaimed.freed_runs == [dead]
    dead_run, alive_run = instance.get_run_by_id(dead), instance.get_run_by_id(alive)
    assert dead_run is not None and dead_run.status == DagsterRunStatus.FAILURE
    assert alive_run is not None and alive_run.status == DagsterRunStatus.STARTED
    holders = instance.event_log_storage.get_concurrency_info(API_POOL).active_run_ids
    assert holders == {alive}
    assert reclaim_dead_runs(instance).failed_runs == []  # idempotent


def test_a_reused_pid_does_not_make_a_dead_run_look_alive(instance: DagsterInstance) -> None:
    # this process's pid, but another start time: the pid was reused after the run's process died
    tags = {**process_tags(), run_tags.PROCESS_STARTED: "1.00"}
    run_id = _started_run(instance, tags)
    assert reclaim_dead_runs(instance).failed_runs == [run_id]


def test_runs_of_other_hosts_are_left_to_dagster(instance: DagsterInstance) -> None:
    run_id = _started_run(instance, {**process_tags(), run_tags.HOST: "another-host"})
    assert reclaim_dead_runs(instance).failed_runs == []
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == DagsterRunStatus.STARTED


@asset(pool=API_POOL)
def pooled_step() -> int:
    return 1


@op(pool=API_POOL)
def pooled_op() -> int:
    return 1


@job(executor_def=multiprocess_executor)
def pooled_job() -> None:
    """As the daemon runs the nightly job: the multiprocess executor, whose claim loop has no
    sleep at all."""
    pooled_op()


def test_a_step_waiting_for_a_pool_slot_sleeps_says_why_and_gives_up(
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Both slots held by a live run: the step waits without spinning and fails after
    PIPELINES_WAIT_TIMEOUT_S, naming the runs that hold the slots."""
    install_pool_wait_guard()
    holders = [_started_run(instance, {}) for _ in range(2)]
    monkeypatch.setenv("PIPELINES_WAIT_TIMEOUT_S", "4")
    caplog.set_level(logging.WARNING, logger="pipelines.pool_wait")
    wall, cpu = time.monotonic(), time.process_time()

    result = materialize([pooled_step], instance=instance, raise_on_error=False)

    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert not result.success
    failure = next(e for e in result.all_events if e.is_run_failure)
    message = str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert "gave up after PIPELINES_WAIT_TIMEOUT_S=4 s" in message
    assert all(run_id in message for run_id in holders)
    assert any("waited 0 s for a slot of pool 'modelarts_api'" in r.message for r in caplog.records)
    # Dagster's own wait loop never sleeps (100% of a core); the guarded one mostly sleeps.
    assert wall >= 4
    assert cpu < 0.25 * wall, f"{cpu:.1f} s of CPU in {wall:.1f} s: the wait spins"
    # the step's pending claim is gone with the run; the holders keep theirs
    info = instance.event_log_storage.get_concurrency_info(API_POOL)
    assert info.active_run_ids == set(holders) and info.pending_step_count == 0


def test_the_multiprocess_executor_waiting_for_a_slot_does_not_spin_either(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_pool_wait_guard()
    holders = [_started_run(instance, {}) for _ in range(2)]
    monkeypatch.setenv("PIPELINES_WAIT_TIMEOUT_S", "4")
    wall, cpu = time.monotonic(), time.process_time()

    with execute_job(reconstructable(pooled_job), instance=instance) as result:
        assert not result.success

    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert wall >= 4
    assert cpu < 0.25 * wall, f"{cpu:.1f} s of CPU in {wall:.1f} s: the wait spins"
    info = instance.event_log_storage.get_concurrency_info(API_POOL)
    assert info.active_run_ids == set(holders)


def _batch(engine: Engine, status: str, loader_pid: int | None) -> int:
    with transaction(engine) as conn:
        row = conn.execute(
            "insert into load_batches (partition_key, window_start_ms, window_end_ms, status,"
            " loader_pid) values (%s, %s, %s, %s, %s) returning batch_id",
            (DAY.isoformat(), WINDOW.start_ms, WINDOW.end_ms, status, loader_pid),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _statuses(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with pooled_connection(engine) as conn:
        rows = conn.execute("select batch_id, status, error from load_batches").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_a_load_left_running_by_a_dead_process_is_stale_then_taken_over(
    engine: Engine, database_url: str
) -> None:
    with psycopg.connect(database_url) as live:
        # a load whose backend still runs (it may be waiting for the day's lock): not stale
        running = _batch(engine, "running", live.info.backend_pid)
        dead = _batch(engine, "running", 2_000_000_000)  # no such backend
        assert partition_status(engine, DAY, DAY)[0].last_load_status == "stale"

        event = ServiceEvent("svc", T0 + 5, "normal", "pulling model image", False)
        with WindowLoad(engine, WINDOW, partition_key=DAY.isoformat()) as load:
            add_events(load, [event])
            result = load.commit({})

        statuses = _statuses(engine)
        assert statuses[dead][0] == "abandoned"
        assert f"batch {result.batch_id} took over" in (statuses[dead][1] or "")
        assert statuses[running][0] == "running"
        assert statuses[result.batch_id][0] == "succeeded"
        assert partition_status(engine, DAY, DAY)[0].last_load_status == "succeeded"


def test_a_load_waits_for_a_held_day_lock_says_who_holds_it_and_gives_up(
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PIPELINES_WAIT_TIMEOUT_S", "1")
    caplog.set_level(logging.WARNING, logger="pipelines.warehouse.loader")
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s, %s)", (LOAD_LOCK_CLASS, T0 // DAY_MS))
        pid = holder.info.backend_pid
        with (
            pytest.raises(LoadLockTimeout, match=f"backend {pid}"),
            WindowLoad(engine, WINDOW, partition_key=DAY.isoformat()),
        ):
            pass
    assert any(f"held by backend {pid}" in r.message for r in caplog.records)
    (status, error), *_ = _statuses(engine).values()
    assert status == "failed" and "PIPELINES_WAIT_TIMEOUT_S=1" in (error or "")
