"""Waiting for a pool slot without spinning and without waiting forever: a patch of Dagster's
private `InstanceConcurrencyContext`, fenced here.

Dagster 1.13's executors wait for a slot of a pool in a loop that never sleeps
(`interval_to_next_pending_claim_check` returns `min(0, ...)`, never more than 0): a run whose
step waits for slots held by runs of killed processes sat at 100% CPU forever (issue #12). The
patch makes a refused claim sleep (the multiprocess executor has no sleep of its own), logs what
the step waits for and which runs hold the slots, and fails the step with `PoolWaitTimeout` when
the same runs held them for PIPELINES_WAIT_TIMEOUT_S.

It is installed only where runs execute: by the CLI before its in-process run, and by
`pool_wait_executor` (the project's default executor) when a run worker launched by the daemon or
the UI creates its executor; never by loading the definitions (the webserver, the daemon, code
servers). `check_private_api` refuses a Dagster whose private class no longer has the shape the
patch was written for (tests/unit/test_pool_wait.py runs it on the installed Dagster).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster
from dagster import DagsterInstance, ExecutorDefinition, RunsFilter, multi_or_in_process_executor
from dagster._core.execution.plan.instance_concurrency_context import (
    InstanceConcurrencyContext,
)

from pipelines import settings
from pipelines.run_tags import PID

log = logging.getLogger(__name__)

# The Dagster releases whose InstanceConcurrencyContext the patch was written for and checked on.
WRITTEN_FOR = "1.13."
# What the patch relies on: the methods it replaces (with their parameters) and the attributes
# it reads.
_METHODS = {
    "claim": ["self", "concurrency_key", "step_key", "step_priority"],
    "interval_to_next_pending_claim_check": ["self"],
}
_ATTRIBUTES = ("_instance", "_pending_claims", "_pending_timeouts")
# How often a waiting step says what it waits for, and looks whether the slots changed hands.
WAIT_LOG_EVERY_S = 30.0
HOLDERS_CHECK_S = 5.0
# A refused claim sleeps this long: the multiprocess executor has no sleep of its own.
REFUSED_SLEEP_S = 0.25


class PoolWaitTimeout(RuntimeError):
    """A step waited longer than PIPELINES_WAIT_TIMEOUT_S for a pool slot."""


class PrivateApiChanged(RuntimeError):
    """The installed Dagster's InstanceConcurrencyContext is not the one the patch was written
    for: the patch would silently do nothing, or break the executor."""


def check_private_api() -> None:
    """Raise PrivateApiChanged unless the installed Dagster is a release the patch was written
    for and its InstanceConcurrencyContext has the methods and attributes the patch uses."""
    problems = []
    if not dagster.__version__.startswith(WRITTEN_FOR):
        problems.append(f"Dagster {dagster.__version__} is not {WRITTEN_FOR}x")
    for name, parameters in _METHODS.items():
        method = getattr(InstanceConcurrencyContext, name, None)
        method = _installed.get(name, method)  # the original, once patched
        if method is None:
            problems.append(f"it has no method {name}")
        elif list(inspect.signature(method).parameters) != parameters:
            problems.append(f"{name} takes {list(inspect.signature(method).parameters)}")
    source = inspect.getsource(InstanceConcurrencyContext.__init__)
    problems += [f"__init__ sets no {a}" for a in _ATTRIBUTES if f"self.{a} =" not in source]
    if problems:
        raise PrivateApiChanged(
            "the pool-wait patch (pipelines/pool_wait.py) was written for Dagster "
            f"{WRITTEN_FOR}x's InstanceConcurrencyContext: {'; '.join(problems)}. Check that "
            "Dagster's wait for a pool slot still spins, then adapt the patch and WRITTEN_FOR"
        )


_installed: dict[str, Callable[..., Any]] = {}


def install_pool_wait_guard() -> None:
    """Make the executor's wait for a pool slot sleep, log and end (idempotent)."""
    if _installed:
        return
    check_private_api()
    claim = InstanceConcurrencyContext.claim
    interval = InstanceConcurrencyContext.interval_to_next_pending_claim_check

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
    _installed["claim"] = claim
    _installed["interval_to_next_pending_claim_check"] = interval


def _guarded_executor(init_context: Any) -> Any:
    install_pool_wait_guard()
    creation_fn = multi_or_in_process_executor.executor_creation_fn
    assert creation_fn is not None
    return creation_fn(init_context)


# Dagster's default executor (same name and config, so run config written for it applies), with
# the patch installed in the run worker that creates it.
pool_wait_executor = ExecutorDefinition(
    name=multi_or_in_process_executor.name,
    config_schema=multi_or_in_process_executor.config_schema.as_field(),
    requirements=multi_or_in_process_executor.get_requirements,
    executor_creation_fn=_guarded_executor,
    description="Dagster's default executor; a step waiting for a pool slot sleeps, logs and "
    "gives up (pipelines/pool_wait.py)",
)


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
        pid = f", pid {run.tags[PID]}" if run and PID in run.tags else ""
        parts.append(f"run {slot.run_id} (step {slot.step_key}, {state}{pid})")
    return ", ".join(parts)
