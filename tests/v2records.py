"""v2 event records into the warehouse for the marts tests: a simulated service's records
(pipelines/simulator/records.py) through the project's v2 loader (pipelines/warehouse/records.py:
forward-only merge, and the (service, UTC day of create_at) of every record it inserts or moves
forward queued for the marts), and the synthetic history's services as v2 twins in SQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine

from pipelines.simulator.records import EventRecord
from pipelines.source.records import EventRecord as SourceRecord
from pipelines.warehouse.loader import DAY_MS
from pipelines.warehouse.records import load_records
from pipelines.warehouse.sql_files import read_sql
from pipelines.windows import TimeWindow


def utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def store_records(engine: Engine, records: Iterable[EventRecord]) -> int:
    """Store `records` as one v2 load (its window: the UTC days of their create_at); returns how
    many records it inserted or moved forward."""
    batch = [SourceRecord(*dataclasses.astuple(r)) for r in records]
    first = min(r.create_at for r in batch) // DAY_MS * DAY_MS
    end = (max(r.create_at for r in batch) // DAY_MS + 1) * DAY_MS
    result = load_records(engine, TimeWindow(first, end), batch, [])
    return result.records_new + result.records_changed


def upsert_synthetic_records(conn: psycopg.Connection[Any], queue: bool = False) -> int:
    """The synthetic history's services svc-* again as v2 services rec-* (their events as
    records, sql/simulator/upsert_synthetic_records.sql), one v2 load; with `queue`, the
    (service, create_at day) of every record it inserted or moved forward is queued for the
    marts, as the v2 loader queues them. Returns the records written."""
    row = conn.execute(
        "insert into load_batches (run_id, window_start_ms, window_end_ms, status, generation)"
        " values ('synthetic records', 0, 0, 'succeeded', 'v2') returning batch_id"
    ).fetchone()
    assert row is not None
    written = conn.execute(
        read_sql("simulator/upsert_synthetic_records.sql"), {"batch_id": row[0]}
    ).rowcount
    if queue:
        conn.execute(
            "insert into mart_rebuild_queue (load_batch_id, service_id, event_date)"
            " select distinct %(batch)s::bigint, service_id,"
            " (to_timestamp(create_at / 1000.0) at time zone 'UTC')::date"
            " from service_event_records where last_load_batch_id = %(batch)s",
            {"batch": row[0]},
        )
    return written
