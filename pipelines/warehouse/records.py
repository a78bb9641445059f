"""Load one window's v2 event records into `service_event_records`, in one transaction.

Like the v1 loader (loader.py): the audit row (generation v2) is committed first, then one
transaction takes the window's day locks (a lock class of its own: a v2 load never waits on a v1
load of the same day), stages the records, locks their stored rows, merges them forward-only
(upsert_event_records.sql: new, changed, unchanged, regressed; the history of changes; the marts
queue), keeps bad records in quarantine and closes the audit row. A failure anywhere rolls
everything back and marks the audit row failed; a rerun then loads the window again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine

from pipelines import settings
from pipelines.source.models import RejectedEvent
from pipelines.source.records import EventRecord, V2ServiceInfo
from pipelines.warehouse.audit import fail_load_batch, finish_load_batch, open_load_batch
from pipelines.warehouse.encoding import raw_record_json
from pipelines.warehouse.loader import DAY_MS, LoadLockTimeout
from pipelines.warehouse.sql_files import read_sql
from pipelines.warehouse.transactions import pooled_connection, transaction
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

# First key of the day locks of v2 loads ("MF"): v1 loads use 0x4D45 (loader.py).
RECORD_LOCK_CLASS = 0x4D46
_COPY_STAGE = (
    "copy record_stage (record_id, service_id, service_version_id, event_type, event_info, "
    "event_info_cn, event_count, create_at, update_at) from stdin"
)
RECORD_COUNTS = ("records_new", "records_changed", "records_unchanged", "records_regressed")


@dataclass(frozen=True)
class RecordLoadResult:
    batch_id: int
    staged: int
    records_new: int
    records_changed: int
    records_unchanged: int
    records_regressed: int
    quarantined: int

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in RECORD_COUNTS}


def load_records(
    engine: Engine,
    window: TimeWindow,
    records: Iterable[EventRecord],
    rejected: Iterable[RejectedEvent],
    counts: Mapping[str, int] | None = None,
    *,
    run_id: str | None = None,
    partition_key: str | None = None,
) -> RecordLoadResult:
    """Merge `records` (and quarantine `rejected`) as one load of `window`; returns its counts.

    The records need not lie in the window (a record belongs to the window of its create_at,
    but a reload of any window may move any record forward): the merge is forward-only and
    commutes, so loads that overlap in records still end in the same rows.
    """
    rows = list(records)
    bad = list(rejected)
    with pooled_connection(engine) as conn:
        run = {"run_id": run_id, "partition_key": partition_key}
        batch_id = open_load_batch(engine, window, run, conn.info.backend_pid, "v2")
        try:
            result = _merge(conn, batch_id, window, rows, bad, counts or {})
        except BaseException as exc:
            try:
                conn.rollback()
            except psycopg.Error:
                log.warning("batch %s: rollback failed", batch_id)
            fail_load_batch(engine, batch_id, f"{type(exc).__name__}: {exc}")
            raise
    log.info(
        "v2 window %s: %d records: %d new, %d changed, %d unchanged, %d regressed, "
        "%d quarantined",
        window, result.staged, result.records_new, result.records_changed,
        result.records_unchanged, result.records_regressed, result.quarantined,
    )  # fmt: skip
    return result


def _merge(
    conn: psycopg.Connection[Any],
    batch_id: int,
    window: TimeWindow,
    rows: list[EventRecord],
    bad: list[RejectedEvent],
    counts: Mapping[str, int],
) -> RecordLoadResult:
    timeout_s = settings.wait_timeout_s()
    conn.execute("select set_config('lock_timeout', %s, true)", (f"{timeout_s}s",))
    days = {
        "lock_class": RECORD_LOCK_CLASS,
        "first_day": window.start_ms // DAY_MS,
        "last_day": (window.end_ms - 1) // DAY_MS,
    }
    try:
        conn.execute(read_sql("load/lock_load_window.sql"), days)
    except psycopg.errors.LockNotAvailable:
        raise LoadLockTimeout(
            f"v2 window {window}: another load held its days' lock for over {timeout_s} s; gave "
            f"up ({settings.WAIT_TIMEOUT_S}={timeout_s})"
        ) from None
    conn.execute(
        read_sql("load/abandon_dead_loads.sql"),
        {"batch_id": batch_id, "window_start_ms": window.start_ms, "window_end_ms": window.end_ms},
    )
    conn.execute("set local client_encoding = 'UTF8'")
    conn.execute(read_sql("load/create_record_stage.sql"))
    with conn.cursor() as cur, cur.copy(_COPY_STAGE) as copy:
        for r in rows:
            copy.write_row(
                (
                    r.record_id, r.service_id, r.service_version_id, r.event_type, r.event_info,
                    r.event_info_cn, r.event_count, r.create_at, r.update_at,
                )
            )  # fmt: skip
    conn.execute(read_sql("load/lock_staged_records.sql"))
    row = conn.execute(read_sql("load/upsert_event_records.sql"), {"batch_id": batch_id}).fetchone()
    assert row is not None
    new, changed, unchanged, regressed = (int(v) for v in row[:4])
    quarantined = _quarantine(conn, batch_id, window, bad)
    result = RecordLoadResult(batch_id, len(rows), new, changed, unchanged, regressed, quarantined)
    finish_load_batch(
        conn,
        batch_id,
        "succeeded",
        {
            **counts,
            **result.counts(),
            # for the columns v1 and v2 loads share: a record stored anew, or seen again
            "inserted": new,
            "already_present": changed + unchanged + regressed,
            "quarantined": quarantined,
        },
    )
    conn.commit()
    return result


def _quarantine(
    conn: psycopg.Connection[Any], batch_id: int, window: TimeWindow, bad: list[RejectedEvent]
) -> int:
    params = [
        {
            "service_id": r.service_id,
            "window_start_ms": window.start_ms,
            "window_end_ms": window.end_ms,
            "reason": f"v2 record: {r.reason}",
            "raw_json": raw_record_json(r.raw),
            "batch_id": batch_id,
        }
        for r in bad
    ]
    if params:
        with conn.cursor() as cur:
            cur.executemany(read_sql("load/insert_quarantined.sql"), params)
    return len(params)


def upsert_v2_services(engine: Engine, services: Iterable[V2ServiceInfo]) -> int:
    """Insert or refresh new-version services in `services` (generation v2, the v2 fields)."""
    params: list[dict[str, Any]] = [
        {
            "service_id": s.service_id,
            "service_name": s.service_name,
            "status": s.status,
            "owner": s.owner,
            "version": s.version,
            "version_count": s.version_count,
            "service_type": s.service_type,
            "create_at_ms": s.create_at_ms,
            "update_at_ms": s.update_at_ms,
            "raw": raw_record_json(s.raw),
        }
        for s in services
    ]
    params.sort(key=lambda row: str(row["service_id"]))  # one order: no deadlock
    with transaction(engine) as conn, conn.cursor() as cur:
        cur.executemany(read_sql("load/upsert_v2_services.sql"), params)
    return len(params)
