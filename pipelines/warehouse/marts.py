"""Rebuild the deployment marts (schema `analytics`) for one UTC day, incrementally, in one
transaction: only the attempts the day's events can change and the daily rows they roll up to."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine

from pipelines.source.models import TimeWindow
from pipelines.warehouse.sql_files import read_sql

log = logging.getLogger(__name__)

# Serialises mart rebuilds: two days may share an attempt (one crossing midnight), and a
# delete+insert of the same rows from two transactions would otherwise collide.
_MARTS_LOCK_KEY = 7_345_190_113

# The order matters: each step reads the temporary tables of the steps before it.
_STEPS = (
    "marts/stage_event_text_rules.sql",
    "marts/stage_mart_scope.sql",
    "marts/stage_deployment_events.sql",
    "marts/stage_deployment_phases.sql",
    "marts/stage_deployment_attempts.sql",
    "marts/stage_affected_days.sql",
    "marts/delete_deployment_phases.sql",
    "marts/delete_deployment_attempts.sql",
    "marts/insert_deployment_attempts.sql",
    "marts/insert_deployment_phases.sql",
    "marts/delete_deployment_outcomes_daily.sql",
    "marts/insert_deployment_outcomes_daily.sql",
    "marts/delete_deployment_phase_durations_daily.sql",
    "marts/insert_deployment_phase_durations_daily.sql",
    "marts/delete_deployment_failure_causes_daily.sql",
    "marts/insert_deployment_failure_causes_daily.sql",
    "marts/delete_unclassified_event_texts_daily.sql",
    "marts/insert_unclassified_event_texts_daily.sql",
    "marts/upsert_event_text_coverage_of_day.sql",
    "marts/upsert_event_text_coverage_of_attempts.sql",
)


_STAGED_TABLES = {
    "marts/stage_event_text_rules.sql": "mart_rules",
    "marts/stage_mart_scope.sql": "mart_scope",
    "marts/stage_deployment_events.sql": "deployment_event_stage",
    "marts/stage_deployment_phases.sql": "deployment_phase_stage",
    "marts/stage_deployment_attempts.sql": "deployment_attempt_stage",
    "marts/stage_affected_days.sql": "mart_affected_days",
}


@dataclass(frozen=True)
class MartRefresh:
    """What one day's rebuild read and wrote."""

    day: date
    services: int
    events_read: int
    attempts: int
    phases: int
    affected_days: tuple[date, ...]
    unclassified_events: int
    seconds: float
    rule_version: int | None = None
    event_coverage: float | None = None

    def as_metadata(self) -> dict[str, int | float | str]:
        return {
            "services": self.services,
            "events_read": self.events_read,
            "attempts_rebuilt": self.attempts,
            "phases_rebuilt": self.phases,
            "days_rebuilt": ", ".join(d.isoformat() for d in self.affected_days),
            "unclassified_events": self.unclassified_events,
            "seconds": round(self.seconds, 3),
            "rule_version": -1 if self.rule_version is None else self.rule_version,
        }


def day_parameters(window: TimeWindow) -> dict[str, Any]:
    """The bound parameters of the mart SQL for one UTC day."""
    start = datetime.fromtimestamp(window.start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(window.end_ms / 1000, tz=UTC)
    return {
        "day": start.date(),
        "day_start": start,
        "day_end": end,
        "day_start_ms": window.start_ms,
        "day_end_ms": window.end_ms,
    }


@contextmanager
def _transaction(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    pooled = engine.raw_connection()
    try:
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        conn.autocommit = False
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    finally:
        pooled.close()


def rebuild_marts_for_day(engine: Engine, window: TimeWindow) -> MartRefresh:
    """Recompute the attempts the day [window) can change and every mart row they feed.

    Reads only the events of the services active that day, from their attempt open at midnight
    (if any) to the day end, or past it to the next attempt boundary while the last attempt is
    still open. Rerunning it for a day changes nothing.
    """
    started = time.perf_counter()
    params = day_parameters(window)
    with _transaction(engine) as conn:
        # Client-side binding: CREATE TABLE AS does not take server-side parameters.
        cur = psycopg.ClientCursor(conn)
        cur.execute("select pg_advisory_xact_lock(%s)", (_MARTS_LOCK_KEY,))
        for step in _STEPS:
            cur.execute(read_sql(step), params)
            staged = _STAGED_TABLES.get(step)
            if staged:
                # temporary tables have no statistics until analysed; without them the planner
                # guesses row counts and may pick a scan of all of service_events
                cur.execute(f"analyze {staged}")
        counts = cur.execute(
            "select"
            " (select count(*) from mart_scope),"
            " (select count(*) from deployment_event_stage),"
            " (select count(*) from deployment_attempt_stage),"
            " (select count(*) from deployment_phase_stage),"
            " (select count(*) from deployment_event_stage where kind = 'unknown'"
            "   and occur_time >= %(day_start_ms)s and occur_time < %(day_end_ms)s)",
            params,
        ).fetchone()
        days = cur.execute(
            "select distinct attempt_date from mart_affected_days order by attempt_date"
        ).fetchall()
        coverage = cur.execute(
            "select rule_version, event_coverage from analytics.event_text_coverage_daily"
            " where event_date = %(day)s",
            params,
        ).fetchone()
    assert counts is not None
    refresh = MartRefresh(
        day=params["day"],
        services=int(counts[0]),
        events_read=int(counts[1]),
        attempts=int(counts[2]),
        phases=int(counts[3]),
        affected_days=tuple(row[0] for row in days),
        unclassified_events=int(counts[4]),
        seconds=time.perf_counter() - started,
        rule_version=None if coverage is None else coverage[0],
        event_coverage=None if coverage is None else coverage[1],
    )
    log.info(
        "marts of %s: %d services, %d events read, %d attempts and %d phases rebuilt in %.3f s",
        refresh.day,
        refresh.services,
        refresh.events_read,
        refresh.attempts,
        refresh.phases,
        refresh.seconds,
    )
    return refresh


def apply_bi_grants(engine: Engine) -> None:
    """Create (idempotently) the read-only BI role and grant it the analytics schema."""
    with _transaction(engine) as conn:
        conn.execute(read_sql("grants/grant_analytics_reader.sql"))


@dataclass(frozen=True)
class TrendDay:
    """All services' attempts of one UTC day, for the materialization's chart."""

    day: date
    attempts: int
    succeeded: int
    failed: int
    success_rate: float | None
    p95_time_to_running_ms: float | None


def outcomes_trend(engine: Engine, day: date, days: int = 14) -> list[TrendDay]:
    """The `days` days up to `day`: attempts, success rate, p95 time to running."""
    with _transaction(engine) as conn:
        rows = psycopg.ClientCursor(conn).execute(
            read_sql("marts/select_outcomes_trend.sql"), {"day": day, "trend_days": days}
        )
        return [TrendDay(*row) for row in rows.fetchall()]


def failure_causes_of_day(engine: Engine, day: date) -> list[tuple[str, str, int, int]]:
    """(cause, phase, failures, services) of the day's failed attempts, most frequent first."""
    with _transaction(engine) as conn:
        rows = psycopg.ClientCursor(conn).execute(
            read_sql("marts/select_failure_causes_of_day.sql"), {"day": day}
        )
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows.fetchall()]


def query_check(engine: Engine, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of `sql/checks/<name>.sql` (for most checks: the offending rows)."""
    with _transaction(engine) as conn:
        rows = psycopg.ClientCursor(conn).execute(read_sql(f"checks/{name}.sql"), params)
        return [tuple(r) for r in rows.fetchall()]
