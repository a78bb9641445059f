"""Runs and pool slots in the Dagster instance: what a killed run leaves behind, and waiting for
a pool slot without spinning and without waiting forever.

A step of the `modelarts_api` pool claims a slot in the instance's storage and frees it when it
ends. A process killed mid-step (SIGKILL, OOM, a lost pod) frees nothing: its run stays STARTED
and its slot stays claimed. Two such runs hold both slots of the pool, and every later run waits
for a slot that never comes. Dagster 1.13's executor waits for a slot in a loop that never sleeps
(`InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns `min(0, ...)`, so
never more than 0), so that run sat at 100% CPU forever (issue #12).

Here:
- `process_tags`: the runs the CLI starts carry the host, pid and start time of their process,
  so a later CLI run can tell that the process is gone;
- `reclaim_dead_runs`: marks such runs failed and frees their slots (and the slots of any run
  that has ended), before a CLI run starts;
- `install_pool_wait_guard`: the executor sleeps between claims (1 s, backing off to 15 s, as
  Dagster intends), logs what it waits for, and fails the step after a deadline.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.plan.instance_concurrency_context import (
    InstanceConcurrencyContext,
)

from pipelines import settings

log = logging.getLogger(__name__)

HOST_TAG = "pipelines/host"
PID_TAG = "pipelines/pid"
PROCESS_STARTED_TAG = "pipelines/process_started"
# Statuses of a run whose process may still be working on it.
UNFINISHED = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# How often a waiting step says what it waits for.
WAIT_LOG_EVERY_S = 30.0


class PoolWaitTimeout(RuntimeError):
    """A step waited longer than PIPELINES_WAIT_TIMEOUT_S for a pool slot."""


def process_tags() -> dict[str, str]:
    """Tags that name this process, for the runs it executes in-process."""
    me = psutil.Process()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(me.pid),
        PROCESS_STARTED_TAG: f"{me.create_time():.2f}",
    }


def _process_alive(tags: dict[str, str]) -> bool:
    """Whether the process named by `process_tags` still runs (a reused pid does not count)."""
    try:
        process = psutil.Process(int(tags[PID_TAG]))
        return f"{process.create_time():.2f}" == tags.get(PROCESS_STARTED_TAG)
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        return False


@dataclass(frozen=True)
class Reclaimed:
    """What `reclaim_dead_runs` did."""

    failed_runs: list[str]  # runs of dead processes, now marked failed
    freed_runs: list[str]  # runs whose pool slots or pending claims were freed


def reclaim_dead_runs(instance: DagsterInstance) -> Reclaimed:
    """Mark the unfinished runs of dead CLI processes on this host failed; free every pool slot
    held by a run that has ended.

    Only runs tagged by `process_tags` on this host are judged here: a run launched by the daemon
    or the UI has a run worker that Dagster's run monitoring watches (deploy/dagster.yaml).
    """
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        if _process_alive(dict(run.tags)):
            continue
        instance.report_run_failed(
            run,
            f"its process (pid {run.tags.get(PID_TAG)} on {host}) is gone; "
            "marked failed by a later run",
        )
        failed.append(run.run_id)
        log.warning(
            "run %s: its process (pid %s) is gone; marked failed", run.run_id, run.tags.get(PID_TAG)
        )
    freed = []
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        if holders:
            live = {
                r.run_id
                for r in instance.get_runs(RunsFilter(run_ids=list(holders), statuses=UNFINISHED))
            }
            for run_id in sorted(holders - live):
                storage.free_concurrency_slots_for_run(run_id)
                freed.append(run_id)
                log.warning("run %s has ended: freed its pool slots", run_id)
    return Reclaimed(failed, freed)


_installed: list[Callable[..., Any]] = []


def install_pool_wait_guard() -> None:
    """Make the executor's wait for a pool slot sleep, log and end (idempotent).

    Patches two methods of Dagster's `InstanceConcurrencyContext` (a private class): checked by
    tests/integration/test_run_recovery.py, which fails if a Dagster release changes them.
    """
    if _installed:
        return
    claim = InstanceConcurrencyContext.claim

    def guarded_claim(
        self: InstanceConcurrencyContext,
        concurrency_key: str,
        step_key: str,
        step_priority: int = 0,
    ) -> bool:
        waits: dict[str, list[float]] = self.__dict__.setdefault("_pipelines_waits", {})
        if claim(self, concurrency_key, step_key, step_priority):
            waits.pop(step_key, None)
            return True
        now = time.monotonic()
        # the first refusal is logged at once, then every WAIT_LOG_EVERY_S
        started, logged = waits.setdefault(step_key, [now, now - WAIT_LOG_EVERY_S])
        waited = now - started
        limit = settings.wait_timeout_s()
        if waited > limit or now - logged >= WAIT_LOG_EVERY_S:
            waits[step_key][1] = now
            holders = _slot_holders(self._instance, concurrency_key)
            if waited > limit:
                raise PoolWaitTimeout(
                    f"step {step_key} waited {waited:.0f} s for a slot of pool "
                    f"{concurrency_key!r}, held by {holders}; gave up after "
                    f"{settings.WAIT_TIMEOUT_S}={limit:.0f} s"
                )
            log.warning(
                "step %s has waited %.0f s for a slot of pool %r, held by %s "
                "(gives up after %.0f s)",
                step_key,
                waited,
                concurrency_key,
                holders,
                limit,
            )
        return False

    def interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
        # Dagster returns min(0, ...), which is never positive: its executor never sleeps.
        timeouts = getattr(self, "_pending_timeouts", {})
        if not self._pending_claims or not timeouts:
            return 0.0
        return max(0.0, min(timeouts.values()) - time.time())

    InstanceConcurrencyContext.claim = guarded_claim  # type: ignore[method-assign]
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = (  # type: ignore[method-assign]
        interval_to_next_pending_claim_check
    )
    _installed.append(claim)


def _slot_holders(instance: DagsterInstance, concurrency_key: str) -> str:
    """'run R (step S, STARTED), ...' for the slots of a pool, for log lines and errors."""
    info = instance.event_log_storage.get_concurrency_info(concurrency_key)
    if not info.claimed_slots:
        return "no run (the pool's limit is 0?)"
    runs = {r.run_id: r for r in instance.get_runs(RunsFilter(run_ids=list(info.active_run_ids)))}
    parts = []
    for slot in info.claimed_slots:
        run = runs.get(slot.run_id)
        state = run.status.value if run else "unknown run"
        pid = f", pid {run.tags[PID_TAG]}" if run and PID_TAG in run.tags else ""
        parts.append(f"run {slot.run_id} (step {slot.step_key}, {state}{pid})")
    return ", ".join(parts)
