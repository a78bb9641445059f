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
import os
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
# How often a waiting step says what it waits for, and looks whether the slots changed hands.
WAIT_LOG_EVERY_S = 30.0
HOLDERS_CHECK_S = 5.0
# A refused claim sleeps this long: the multiprocess executor has no sleep of its own.
REFUSED_SLEEP_S = 0.25


class PoolWaitTimeout(RuntimeError):
    """A step waited longer than PIPELINES_WAIT_TIMEOUT_S for a pool slot."""


def process_tags() -> dict[str, str]:
    """Tags that name this process, for the runs it executes in-process."""
    me = psutil.Process()
    return {
        HOST_TAG: _host(),
        PID_TAG: str(me.pid),
        PROCESS_STARTED_TAG: f"{me.create_time():.2f}",
    }


def _host() -> str:
    """This host, and its pid namespace where there is one: containers may share a hostname."""
    try:
        return f"{socket.gethostname()}/pidns:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


def _process_alive(tags: dict[str, str]) -> bool:
    """Whether the process named by `process_tags` still runs. A pid reused by a process that
    started at another time does not count; one we may not inspect does (it exists)."""
    try:
        process = psutil.Process(int(tags[PID_TAG]))
        # 2 s of slack: psutil derives the start time from the boot time, which moves when the
        # wall clock is stepped (NTP, a resumed VM)
        return abs(process.create_time() - float(tags[PROCESS_STARTED_TAG])) < 2.0
    except psutil.AccessDenied:
        return True
    except (psutil.NoSuchProcess, KeyError, ValueError):
        return False


@dataclass(frozen=True)
class Reclaimed:
    """What `reclaim_dead_runs` did."""

    failed_runs: list[str]  # runs of dead processes, now marked failed
    freed_runs: list[str]  # runs whose pool slots or pending claims were freed


def reclaim_dead_runs(instance: DagsterInstance) -> Reclaimed:
    """Mark the unfinished runs of dead CLI processes on this host failed; free every pool slot
    held by a run that has ended.

    Only runs executed in-process by a CLI on this host (tagged by `process_tags`, no remote
    origin) are judged here: a run launched by the daemon or the UI has a run worker, which
    Dagster's run monitoring watches where the run launcher supports it (deploy/README.md).
    """
    host = _host()
    failed = []
    for run in instance.get_runs(RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        # a re-execution from the UI may copy our tags onto a run the daemon launched
        if run.remote_job_origin is not None or _process_alive(dict(run.tags)):
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
        waits: dict[str, _Wait] = self.__dict__.setdefault("_pipelines_waits", {})
        if claim(self, concurrency_key, step_key, step_priority):
            waits.pop(step_key, None)
            return True
        now = time.monotonic()
        wait = waits.setdefault(step_key, _Wait(started=now, since=now))
        if now - wait.holders_checked >= HOLDERS_CHECK_S:
            wait.holders_checked = now
            holders = _holder_ids(self._instance, concurrency_key)
            if holders != wait.holders:
                # Slots changed hands: the queue moves, so this is waiting one's turn, not a
                # wedge. The deadline counts from the last change.
                wait.holders, wait.since = holders, now
        waited, limit = now - wait.since, settings.wait_timeout_s()
        if waited > limit or now - wait.logged >= WAIT_LOG_EVERY_S:
            wait.logged = now
            holders_text = _slot_holders(self._instance, concurrency_key)
            if waited > limit:
                raise PoolWaitTimeout(
                    f"step {step_key} waited {waited:.0f} s for a slot of pool "
                    f"{concurrency_key!r} while the same runs held it: {holders_text}; gave up "
                    f"after {settings.WAIT_TIMEOUT_S}={limit:.0f} s"
                )
            log.warning(
                "step %s has waited %.0f s for a slot of pool %r, held by %s "
                "(gives up after %.0f s without a change of holders)",
                step_key, now - wait.started, concurrency_key, holders_text, limit,
            )  # fmt: skip
        # Dagster's multiprocess executor asks again at once, with no sleep of its own.
        time.sleep(REFUSED_SLEEP_S)
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


@dataclass
class _Wait:
    """One step's wait for a pool slot."""

    started: float
    since: float  # when the holders last changed
    logged: float = float("-inf")  # the first refusal is logged at once
    holders_checked: float = float("-inf")
    holders: frozenset[str] | None = None


def _holder_ids(instance: DagsterInstance, concurrency_key: str) -> frozenset[str]:
    info = instance.event_log_storage.get_concurrency_info(concurrency_key)
    return frozenset(info.active_run_ids)


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
