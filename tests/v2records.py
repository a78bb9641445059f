"""v2 event records stored the way the marts expect a v2 load to store them (the contract the v2
loader follows, README "Both generations"): one row per record id, count and update_at
moved forward only, create_at kept at the earliest, and, in the same transaction, the (service,
UTC day of create_at) pair of every record it inserted or changed queued in mart_rebuild_queue
(both days when a record's create_at moved earlier)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine

from pipelines.simulator.records import EventRecord
from pipelines.warehouse.sql_files import read_sql
from pipelines.warehouse.transactions import transaction


def utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def store_records(engine: Engine, records: Iterable[EventRecord]) -> int:
    """Store `records` as one v2 load; returns how many records it inserted or changed."""
    batch = list(records)
    with transaction(engine) as conn:
        row = conn.execute(
            "insert into load_batches (run_id, window_start_ms, window_end_ms, status,"
            " generation) values ('test v2 records', 0, 0, 'succeeded', 'v2')"
            " returning batch_id"
        ).fetchone()
        assert row is not None
        batch_id = row[0]
        changed = 0
        for r in batch:
            before = conn.execute(
                "select event_count, create_at, update_at from service_event_records"
                " where record_id = %s",
                (r.record_id,),
            ).fetchone()
            if before is None:
                conn.execute(
                    "insert into service_event_records (record_id, service_id,"
                    " service_version_id, event_type, event_info, event_info_cn, event_count,"
                    " create_at, update_at, first_load_batch_id, last_load_batch_id)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        r.record_id,
                        r.service_id,
                        r.service_version_id,
                        r.event_type,
                        r.event_info,
                        r.event_info_cn,
                        r.event_count,
                        r.create_at,
                        r.update_at,
                        batch_id,
                        batch_id,
                    ),
                )
                days = {utc_day(r.create_at)}
            else:
                count, create_at, update_at = before
                new = (max(count, r.event_count), min(create_at, r.create_at))
                new_update = max(update_at, r.update_at)
                if (*new, new_update) == (count, create_at, update_at):
                    continue
                conn.execute(
                    "update service_event_records set event_count = %s, create_at = %s,"
                    " update_at = %s, last_load_batch_id = %s where record_id = %s",
                    (*new, new_update, batch_id, r.record_id),
                )
                days = {utc_day(create_at), utc_day(new[1])}
            changed += 1
            for day in days:
                conn.execute(
                    "insert into mart_rebuild_queue (load_batch_id, service_id, event_date)"
                    " values (%s, %s, %s) on conflict do nothing",
                    (batch_id, r.service_id, day),
                )
    return changed


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
