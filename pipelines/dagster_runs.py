"""Runs and pool slots in the Dagster instance: what a killed run leaves behind.

A step of the `modelarts_api` pool claims a slot in the instance's storage and frees it when it
ends. A process killed mid-step (SIGKILL, OOM, a lost pod) frees nothing: its run stays STARTED
and its slot stays claimed. Two such runs hold both slots of the pool, and every later run waits
for a slot that never comes. Dagster 1.13's executor waits for a slot in a loop that never sleeps
(pipelines/pool_wait.py), so that run sat at 100% CPU forever (issue #12).

Here:
- `process_tags`: the runs the CLI starts carry the host, pid and start time of their process,
  so a later CLI run can tell that the process is gone;
- `reclaim_dead_runs`: marks such runs failed and frees their slots (and the slots of any run
  that has ended), before a CLI run starts.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import psutil
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from pipelines.run_tags import HOST, PID, PROCESS_STARTED

log = logging.getLogger(__name__)

# Statuses of a run whose process may still be working on it.
UNFINISHED = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def process_tags() -> dict[str, str]:
    """Tags that name this process, for the runs it executes in-process."""
    me = psutil.Process()
    return {
        HOST: _host(),
        PID: str(me.pid),
        PROCESS_STARTED: f"{me.create_time():.2f}",
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
        process = psutil.Process(int(tags[PID]))
        # 2 s of slack: psutil derives the start time from the boot time, which moves when the
        # wall clock is stepped (NTP, a resumed VM)
        return abs(process.create_time() - float(tags[PROCESS_STARTED])) < 2.0
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
    for run in instance.get_runs(RunsFilter(statuses=UNFINISHED, tags={HOST: host})):
        # a re-execution from the UI may copy our tags onto a run the daemon launched
        if run.remote_job_origin is not None or _process_alive(dict(run.tags)):
            continue
        instance.report_run_failed(
            run,
            f"its process (pid {run.tags.get(PID)} on {host}) is gone; "
            "marked failed by a later run",
        )
        failed.append(run.run_id)
        log.warning(
            "run %s: its process (pid %s) is gone; marked failed", run.run_id, run.tags.get(PID)
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
