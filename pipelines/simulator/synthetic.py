"""A long synthetic deployment history written straight into the warehouse in SQL
(`sql/simulator/select_synthetic_events.sql`): millions of events in seconds, for benchmarks and
query-plan tests that need a big `service_events` (the served simulator builds its history in
Python and goes through the API, which is too slow for a year of 1,000 services)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg

from pipelines.source.models import ServiceEvent
from pipelines.warehouse.sql_files import read_sql
from pipelines.windows import day_start_ms


def _params(start: date, end: date, services: int, runtime_events: int) -> dict[str, int]:
    return {
        "start_ms": day_start_ms(start),
        "end_ms": day_start_ms(end),
        "services": services,
        "runtime_events": runtime_events,
    }


def insert_synthetic_history(
    conn: psycopg.Connection[Any],
    first_day: date,
    days: int,
    services: int,
    runtime_events: int,
    chunk_days: int = 10,
) -> int:
    """Insert the synthetic events of `days` days from `first_day` into service_events, a
    statement per `chunk_days` days, under one `load_batches` row; returns the rows inserted.
    Nothing is queued for the marts: rebuild them with `rebuild_marts` over the days."""
    end_day = first_day + timedelta(days=days)
    batch = conn.execute(
        "insert into load_batches (run_id, window_start_ms, window_end_ms, status)"
        " values ('synthetic history', %s, %s, 'succeeded') returning batch_id",
        (day_start_ms(first_day), day_start_ms(end_day)),
    ).fetchone()
    assert batch is not None
    insert = (
        "insert into service_events (service_id, occur_time, event_type, event_info,"
        " load_batch_id) select synthetic.*, %(batch_id)s from ("
        + read_sql("simulator/select_synthetic_events.sql")
        + ") as synthetic"
    )
    rows = 0
    for offset in range(0, days, chunk_days):
        start = first_day + timedelta(days=offset)
        end = min(end_day, start + timedelta(days=chunk_days))
        params = {"batch_id": batch[0], **_params(start, end, services, runtime_events)}
        rows += conn.execute(insert, params).rowcount
    return rows


def synthetic_day(
    conn: psycopg.Connection[Any], day: date, services: int, runtime_events: int
) -> list[ServiceEvent]:
    """The synthetic history's events of one UTC day, to load through the loader."""
    rows = conn.execute(
        read_sql("simulator/select_synthetic_events.sql"),
        _params(day, day + timedelta(days=1), services, runtime_events),
    ).fetchall()
    return [ServiceEvent(r[0], r[1], r[2], r[3]) for r in rows]
