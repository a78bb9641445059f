"""The audit rows of window loads (`load_batches`): opened before a load begins, closed with
its counts or its error."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy import Engine

from pipelines.warehouse.sql_files import read_sql
from pipelines.warehouse.transactions import pooled_connection, transaction
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

# The counts an audit row keeps (finish_load_batch.sql); a count not given is 0.
AUDIT_COUNTS = (
    "services",
    "services_missing",
    "pages",
    "requests",
    "retries",
    "throttled",
    "fetched",
    "out_of_window",
    "inserted",
    "already_present",
    "quarantined",
    # v2 loads (service_event_records); 0 on v1 loads
    "records_new",
    "records_changed",
    "records_unchanged",
    "records_regressed",
)


def open_load_batch(
    engine: Engine,
    window: TimeWindow,
    run: dict[str, str | None],
    loader_pid: int,
    generation: str = "v1",
) -> int:
    """Commit the audit row of a load about to begin (status running); returns its batch id.

    `run`: its run_id and partition_key (each may be None); `loader_pid`: the backend that will
    hold the load's transaction (abandon_dead_loads.sql); `generation`: which API generation
    the load fetched (v1: service_events, v2: service_event_records).
    """
    with transaction(engine) as conn:
        row = conn.execute(
            read_sql("load/start_load_batch.sql"),
            {
                "run_id": run.get("run_id"),
                "partition_key": run.get("partition_key"),
                "window_start_ms": window.start_ms,
                "window_end_ms": window.end_ms,
                "loader_pid": loader_pid,
                "generation": generation,
            },
        ).fetchone()
    assert row is not None
    return int(row[0])


def finish_load_batch(
    conn: psycopg.Connection[Any],
    batch_id: int,
    status: str,
    counts: Mapping[str, int],
    error: str | None = None,
) -> None:
    """Close the audit row with its status and counts, in the caller's transaction."""
    params: dict[str, Any] = {name: counts.get(name, 0) for name in AUDIT_COUNTS}
    params.update(batch_id=batch_id, status=status, error=error)
    conn.execute(read_sql("load/finish_load_batch.sql"), params)


def fail_load_batch(engine: Engine, batch_id: int, error: str) -> None:
    """Close the audit row as failed, with the error, in a transaction of its own."""
    try:
        with transaction(engine) as conn:
            finish_load_batch(conn, batch_id, "failed", {}, error[:2000])
    except Exception:  # the load's own error matters more than the audit update's
        log.exception("could not mark load batch %s failed", batch_id)


def record_failed_load(
    engine: Engine,
    window: TimeWindow,
    error: BaseException,
    run: dict[str, str | None],
    generation: str = "v1",
) -> int:
    """The audit row of a window whose load never began because its extraction failed (a range
    extracts all its days before loading any): status failed, with the error. Returns its id.

    `run`: its run_id and partition_key, as for `open_load_batch`.
    """
    with pooled_connection(engine) as conn:
        loader_pid = conn.info.backend_pid
    batch_id = open_load_batch(engine, window, run, loader_pid, generation)
    fail_load_batch(engine, batch_id, f"extraction failed: {type(error).__name__}: {error}")
    return batch_id


def loaded_windows(engine: Engine, run_id: str) -> set[tuple[int, int]]:
    """(window_start_ms, window_end_ms) of every window run `run_id` has loaded (succeeded)."""
    with pooled_connection(engine) as conn:
        rows = conn.execute(read_sql("load/select_loaded_windows.sql"), {"run_id": run_id})
        return {(int(start), int(end)) for start, end in rows.fetchall()}
