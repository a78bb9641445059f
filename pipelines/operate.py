"""Operator views: what each day holds, and whether a day matches the API."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import Engine

from pipelines.horizon import Horizon, current_horizon
from pipelines.report.queries import OutcomesDay
from pipelines.source.client import ModelArtsClient
from pipelines.source.errors import ServiceNotFoundError
from pipelines.source.records import fetch_service_records
from pipelines.warehouse.sql_files import read_sql
from pipelines.warehouse.transactions import pooled_connection
from pipelines.windows import TimeWindow


@dataclass(frozen=True)
class DayStatus:
    day: date
    state: str  # loaded, not loaded, given up, unrecoverable (sql/migrations/0017)
    last_load_status: str | None
    last_load_finished_at: datetime | None
    last_run_id: str | None
    last_fetched: int | None
    last_inserted: int | None
    last_already_present: int | None
    last_quarantined: int | None
    services: int
    events: int
    # the day's latest v2 load (service_event_records) and the v2 records created on the day
    v2_last_load_status: str | None = None
    v2_last_records_new: int | None = None
    v2_last_records_changed: int | None = None
    v2_records: int = 0
    last_throttled: int | None = None  # requests refused for the quota, waited out
    rule_version: int | None = None  # the event text rules that last rebuilt the day's marts
    event_coverage: float | None = None  # the share of its events those rules explain


@dataclass(frozen=True)
class ServiceCheck:
    service_id: str
    api_total: int | None  # None: the service is gone from the API
    stored: int
    generation: str = "v1"

    @property
    def matches(self) -> bool:
        return self.api_total == self.stored


def _query(engine: Engine, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pooled_connection(engine) as conn:
        return list(conn.execute(read_sql(name), params).fetchall())


def partition_status(
    engine: Engine, first_day: date, last_day: date, horizon: Horizon | None = None
) -> list[DayStatus]:
    """One row per UTC day: its state, the latest load's outcome and the events stored for it."""
    days = {"first_day": first_day.isoformat(), "last_day": last_day.isoformat()}
    first_recoverable = (horizon or current_horizon()).first_recoverable_day
    params = {**days, "first_recoverable_day": first_recoverable.isoformat()}
    with pooled_connection(engine) as conn:
        # by column name: each generation and concern adds its columns to the query
        cursor = conn.cursor(row_factory=dict_row)
        rows = cursor.execute(read_sql("ops/partition_status.sql"), params).fetchall()
    try:
        rules = {r[0]: (r[1], r[2]) for r in _query(engine, "ops/rule_versions_by_day.sql", days)}
    except psycopg.errors.InsufficientPrivilege:  # the loader role cannot read `analytics`
        rules = {}
    statuses = []
    for row in rows:
        rule_version, event_coverage = rules.get(row["day"], (None, None))
        day = DayStatus(**row)
        statuses.append(replace(day, rule_version=rule_version, event_coverage=event_coverage))
    return statuses


def day_states(
    engine: Engine, first_day: date, last_day: date, horizon: Horizon | None = None
) -> dict[date, str]:
    """Per UTC day of the range: loaded, not loaded, given up or unrecoverable (migration
    0017)."""
    rows = _query(
        engine,
        "ops/day_load_states.sql",
        {
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
            "first_recoverable_day": (horizon or current_horizon()).first_recoverable_day,
        },
    )
    return {row[0]: row[1] for row in rows}


def record_given_up(engine: Engine, days: list[date], runs: int) -> None:
    """Record days the catch-up sensor stopped asking for: `status` shows them `given up`."""
    with pooled_connection(engine, autocommit=True) as conn:
        conn.execute(read_sql("ops/record_given_up_days.sql"), {"days": days, "runs": runs})


def deployment_outcomes(engine: Engine, first_day: date, last_day: date) -> list[OutcomesDay]:
    """One row per UTC day, from analytics.deployment_outcomes_daily (zeros for a day without)."""
    rows = _query(
        engine,
        "report/select_outcomes_per_day.sql",  # the report's figures, the same query
        {"first_day": first_day, "last_day": last_day},
    )
    return [OutcomesDay(*row) for row in rows]


def verify_window(
    client: ModelArtsClient, engine: Engine, service_ids: list[str], window: TimeWindow
) -> list[ServiceCheck]:
    """Per service: the API's total_count for the window against the rows stored for it.

    A difference is a lead, not a verdict: the API counts its own duplicate and malformed
    records, which the warehouse folds or quarantines.
    """
    stored = dict(
        _query(
            engine,
            "ops/count_events_by_service.sql",
            {"start_ms": window.start_ms, "end_ms": window.end_ms},
        )
    )
    checks = []
    for service_id in sorted(set(service_ids) | set(stored)):
        try:
            total: int | None = client.fetch_events_page(service_id, window, 0, 1).total_count
        except ServiceNotFoundError:
            total = None
        checks.append(ServiceCheck(service_id, total, int(stored.get(service_id, 0))))
    return checks


def verify_records_window(
    client: ModelArtsClient, engine: Engine, service_ids: list[str], window: TimeWindow
) -> list[ServiceCheck]:
    """Per v2 service: the records the API holds created in the window (paged as a load pages
    them, exact whichever record time the API's window filters on; the listing's `total`
    re-checked) against the records stored for it."""
    stored = dict(
        _query(
            engine,
            "ops/count_records_by_service.sql",
            {"start_ms": window.start_ms, "end_ms": window.end_ms},
        )
    )
    checks = []
    for service_id in sorted(set(service_ids) | set(stored)):
        found = fetch_service_records(client, service_id, window.start_ms)
        total = (
            None
            if found.missing
            else sum(1 for r in found.records.values() if window.contains(r.create_at))
        )
        checks.append(ServiceCheck(service_id, total, int(stored.get(service_id, 0)), "v2"))
    return checks
