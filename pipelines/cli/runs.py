"""The nightly job executed in this process over a range of days, in the Dagster instance of
DAGSTER_HOME: the instance made ready (its folder, the runs of killed processes reclaimed), the
run's tags, its rows printed as days load, and its failure told on one line."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import run_tags, settings
from pipelines.cli.errors import CliError, one_line
from pipelines.cli.tables import DAY_HEADER, day_row, print_outcomes, v2_day_row

if TYPE_CHECKING:
    from dagster import DagsterInstance, ExecuteInProcessResult


# A CLI run prints its own progress and its failure on the console. Dagster's capture of the
# process's stdout and stderr into compute-log files would start, for every run, a `tail -F` and a
# Python watcher process per stream (four processes) and pass the console through them (bench/
# README.md, "Fixed cost of a small run"). The UI still has the run's events; the daemon's and the
# UI's runs keep the instance's own compute-log setting.
_CLI_OVERRIDES = {
    "compute_logs": {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
}


def dagster_instance() -> DagsterInstance:
    """The instance of DAGSTER_HOME (its dagster.yaml), made once per process and home, without
    compute-log capture (above), its SQLite event log (if it is one) on kept connections
    (event_log.py)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from pipelines.cli import event_log

    home = os.environ["DAGSTER_HOME"]
    if home not in _instances:
        ref = InstanceRef.from_dir(home, overrides=_CLI_OVERRIDES)
        instance = DagsterInstance.from_ref(ref)
        event_log.speed_up(instance.event_log_storage)
        _instances[home] = instance
    return _instances[home]


_instances: dict[str, DagsterInstance] = {}


def reclaim_killed_runs() -> None:
    """Free what runs of killed processes left in the Dagster instance (see dagster_runs.py);
    this process executes runs: their waits for a pool slot sleep (pool_wait.py)."""
    from pipelines.dagster_runs import reclaim_dead_runs
    from pipelines.pool_wait import install_pool_wait_guard

    install_pool_wait_guard()
    reclaimed = reclaim_dead_runs(dagster_instance())
    if reclaimed.failed_runs:
        print(
            f"dagster: {len(reclaimed.failed_runs)} run(s) of dead processes marked failed: "
            + ", ".join(reclaimed.failed_runs)
        )


_MINIMAL_INSTANCE = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def ensure_dagster_home() -> None:
    """DAGSTER_HOME when unset: an instance folder in the data directory, never the working
    directory (Dagster writes history/, storage/, .nux/ ... into DAGSTER_HOME).

    Its dagster.yaml is a copy, refreshed on every start, of the checkout's `dagster.yaml`
    (SQLite), or of `deploy/dagster.yaml` (Postgres) when DAGSTER_PG_URL says so; outside a
    checkout, a minimal one."""
    if os.environ.get("DAGSTER_HOME"):
        return
    data_dir = Path(os.environ.get(settings.DATA_DIR, settings.DEFAULT_DATA_DIR))
    if os.environ.get("DAGSTER_PG_URL"):
        source, home = Path("deploy/dagster.yaml"), data_dir / "dagster_home_postgres"
    else:
        source, home = Path("dagster.yaml"), data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        config = (
            f"# Copied by modelarts-etl from {source.resolve()} on every start: edit that file,\n"
            "# or set DAGSTER_HOME to an instance folder of your own.\n"
            + source.read_text(encoding="utf-8")
        )
    else:
        config = _MINIMAL_INSTANCE
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.is_file() or instance_yaml.read_text(encoding="utf-8") != config:
        instance_yaml.write_text(config, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home.resolve())


# Dagster's console log stays silent in CLI runs: a failed step is reported once, on one line, by
# _failure; the traceback stays in the run's event log (the UI shows it).
_QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _failure(result: ExecuteInProcessResult) -> str:
    """Why a run failed, on one line: its first step failure, else the run's own error."""
    for event in result.all_events:
        data = event.step_failure_data if event.is_step_failure else None
        if data is not None and data.user_failure_data and data.user_failure_data.description:
            # a permanent failure (pipelines/failures.py): its description says what to do
            return one_line(CliError(data.user_failure_data.description))
    errors: list[Any] = [
        event.step_failure_data.error
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data is not None
    ] + [
        getattr(event.event_specific_data, "error", None)
        for event in result.all_events
        if event.is_run_failure
    ]
    for error in filter(None, errors):
        # Dagster wraps a step's exception ("Error occurred while executing ..."): its cause
        while error.cause is not None and (
            "Error occurred" in (error.message or "") or "Exceeded max_retries" in error.message
        ):
            error = error.cause
        return one_line(RuntimeError(error.message.strip())).removeprefix("RuntimeError: ")
    return "see the Dagster UI"


class _DayProgress(logging.Handler):
    """Prints a row per day as its load commits (ingest.py logs a `window_report`)."""

    def emit(self, record: logging.LogRecord) -> None:
        v2 = getattr(record, "record_report", None)
        if v2 is not None:  # a day's v2 records (ingest_records.py): a line of its own
            print(v2_day_row(v2.partition_key, v2.as_metadata()), flush=True)
            return
        report = getattr(record, "window_report", None)
        if report is None:
            return
        day = datetime.fromtimestamp(report.window.start_ms / 1000, UTC).date().isoformat()
        print(day_row(day, report.as_metadata()), flush=True)


@contextmanager
def _day_progress() -> Iterator[None]:
    handler = _DayProgress(logging.INFO)
    logs = [logging.getLogger(name) for name in ("pipelines.ingest", "pipelines.ingest_records")]
    levels = [log.level for log in logs]
    for log in logs:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)


def run_days(command: str, first: date, last: date) -> int:
    """One in-process run of the nightly job over the days first..last: service_events (the
    services listed once, each service's events of the range fetched once, one load per day),
    then the deployment marts of the range and the report. Prints each day's row as its load
    commits, then, after a successful run, the deployment attempts per day."""
    from pipelines.dagster_runs import process_tags
    from pipelines.definitions import build_definitions
    from pipelines.horizon import current_horizon, split_days

    horizon = current_horizon()
    beyond, first_kept = split_days(first, last, horizon)
    if beyond:
        # the API would answer them as empty: loading them would record quiet days, not lost ones
        print(
            f"{command}: {beyond[0]}..{beyond[-1]} ({len(beyond)} day(s)) wholly beyond the "
            f"API's {horizon.retention_days}-day retention ({settings.MODELARTS_RETENTION_DAYS}; "
            f"the first day it still holds is {horizon.first_recoverable_day}): nothing loaded "
            "for them; `modelarts-etl status` shows those never loaded as unrecoverable"
        )
    if first_kept is None:
        return 1
    first = first_kept
    job = build_definitions().resolve_job_def("nightly")
    instance = dagster_instance()
    print(DAY_HEADER)
    with _day_progress():
        result = job.execute_in_process(
            instance=instance,
            tags={
                **process_tags(),
                run_tags.PARTITION_RANGE_START: first.isoformat(),
                run_tags.PARTITION_RANGE_END: last.isoformat(),
                run_tags.TRIGGER: command,
            },
            run_config=_QUIET_RUN,
            raise_on_error=False,
        )
    from pipelines.cli import event_log

    event_log.close(instance.event_log_storage)  # the run's events checkpointed into its files
    if result.success:
        print(f"{command} {first}..{last}: run {result.run_id} succeeded")
        print_outcomes(first, last)
        print(f"runs recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
        return 0
    print(f"{command} {first}..{last}: run {result.run_id} FAILED: {_failure(result)}")
    return 1
