"""Rebuild the deployment marts (schema `analytics`) incrementally: only the attempts that the
given UTC days' events (and the days the loader queued) can change, and the daily rows they roll
up to, in one pass per run of consecutive days, one transaction per pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from pipelines.warehouse.sql_files import read_sql
from pipelines.warehouse.transactions import locked_snapshot_transaction, transaction
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

# Serialises mart rebuilds: two days may share an attempt (one crossing midnight), and a
# delete+insert of the same rows from two transactions would otherwise collide. A pass holds it
# and reads one snapshot (`locked_snapshot_transaction`): loads may commit while it runs (the
# load step rebuilds each day's marts while later days load), and it sees each wholly or not.
_MARTS_LOCK_KEY = 7_345_190_113

# How the planner may join a step's tables. Some steps join the staged scope with a mart table
# that grows with history. Their join bounds are per-service ranges the planner cannot estimate
# (it takes each side of a range for a third of the rows), and, misjudging them, it hashes the
# whole table to change a few rows of it (bench/README.md, "Figures behind comments in the code").
# With hash and merge joins off for these statements alone (_INDEX_LOOP), the plan left is a loop
# over the scope with an index range per row, whatever the statistics. The coverage upserts join
# the pass's days with the daily tables: one key range per day, not a scan of every day's rows.
# (service_events is read through subqueries run once per service, which need no setting: see
# stage_deployment_events.sql.)
_ANY_JOIN = False
_INDEX_LOOP = True

# The order matters: each step reads the temporary tables of the steps before it. A step
# "file:table" runs the file as a template for that table of schema analytics (`step_statement`).
_STEPS = {
    "marts/stage_event_text_rules.sql": _ANY_JOIN,
    "marts/stage_mart_queue.sql": _ANY_JOIN,
    "marts/stage_mart_services.sql": _ANY_JOIN,
    "marts/stage_mart_scope.sql": _ANY_JOIN,
    "marts/stage_event_records.sql": _ANY_JOIN,
    "marts/stage_deployment_events.sql": _ANY_JOIN,
    "marts/stage_deployment_phases.sql": _ANY_JOIN,
    "marts/stage_deployment_attempts.sql": _ANY_JOIN,
    "marts/stage_affected_days.sql": _INDEX_LOOP,
    "marts/delete_scoped_attempts.sql:deployment_phases": _INDEX_LOOP,
    "marts/delete_scoped_attempts.sql:deployment_attempts": _INDEX_LOOP,
    "marts/insert_deployment_attempts.sql": _ANY_JOIN,
    "marts/insert_deployment_phases.sql": _ANY_JOIN,
    "marts/delete_affected_days.sql:deployment_outcomes_daily": _INDEX_LOOP,
    "marts/insert_deployment_outcomes_daily.sql": _INDEX_LOOP,
    "marts/delete_affected_days.sql:deployment_phase_durations_daily": _INDEX_LOOP,
    "marts/insert_deployment_phase_durations_daily.sql": _INDEX_LOOP,
    "marts/delete_affected_days.sql:deployment_failure_causes_daily": _INDEX_LOOP,
    "marts/insert_deployment_failure_causes_daily.sql": _INDEX_LOOP,
    "marts/delete_unclassified_event_texts_daily.sql": _INDEX_LOOP,
    "marts/insert_unclassified_event_texts_daily.sql": _ANY_JOIN,
    "marts/upsert_event_text_coverage_of_day.sql": _INDEX_LOOP,
    "marts/upsert_event_text_coverage_of_attempts.sql": _INDEX_LOOP,
}
_JOIN_SETTINGS = ("enable_hashjoin", "enable_mergejoin")

_STAGED_TABLES = {
    "marts/stage_event_text_rules.sql": "mart_rules",
    "marts/stage_mart_queue.sql": "mart_queued",
    "marts/stage_mart_services.sql": "mart_services",
    "marts/stage_mart_scope.sql": "mart_scope",
    "marts/stage_event_records.sql": "deployment_record_stage",
    "marts/stage_deployment_events.sql": "deployment_event_stage",
    "marts/stage_deployment_phases.sql": "deployment_phase_stage",
    "marts/stage_deployment_attempts.sql": "deployment_attempt_stage",
    "marts/stage_affected_days.sql": "mart_affected_days",
}


def step_statement(step: str, text: str | None = None) -> sql.SQL | sql.Composed:
    """The statement of a rebuild step: its file's SQL (`text`, or read from sql/), and for a
    "file:table" step the file's template with {mart} as that table of schema analytics, quoted
    as an identifier. The table names are the fixed ones of `_STEPS`, never data."""
    file, _, mart = step.partition(":")
    template = sql.SQL(read_sql(file) if text is None else text)
    return template.format(mart=sql.Identifier("analytics", mart)) if mart else template


@dataclass(frozen=True)
class MartRefresh:
    """What one rebuild read and wrote, over all its passes."""

    days: tuple[date, ...]  # the days asked for (partitions)
    queued_days: tuple[date, ...]  # days the loader queued that this rebuild consumed
    services: int
    events_read: int
    attempts: int
    phases: int
    affected_days: tuple[date, ...]
    unclassified_events: int
    seconds: float
    passes: int = 1
    # seconds per SQL step (file name), summed over the passes
    step_seconds: dict[str, float] = field(default_factory=dict, compare=False)
    # the rule version and event coverage recorded for the last day asked for
    rule_version: int | None = None
    event_coverage: float | None = None

    @property
    def day(self) -> date:
        """The last day asked for."""
        return self.days[-1]

    def as_metadata(self) -> dict[str, int | float | str]:
        return {
            "services": self.services,
            "events_read": self.events_read,
            "attempts_rebuilt": self.attempts,
            "phases_rebuilt": self.phases,
            "days_rebuilt": ", ".join(d.isoformat() for d in self.affected_days),
            "queued_days": ", ".join(d.isoformat() for d in self.queued_days),
            "unclassified_events": self.unclassified_events,
            "passes": self.passes,
            "seconds": round(self.seconds, 3),
            "rule_version": -1 if self.rule_version is None else self.rule_version,
        }


def day_parameters(window: TimeWindow) -> dict[str, Any]:
    """The bound parameters of the day-scoped SQL (checks) for one UTC day."""
    start = datetime.fromtimestamp(window.start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(window.end_ms / 1000, tz=UTC)
    return {
        "day": start.date(),
        "day_start": start,
        "day_end": end,
        "day_start_ms": window.start_ms,
        "day_end_ms": window.end_ms,
    }


# Days per pass at most: a pass stages all its events in temporary tables, so a year queued by a
# backfill whose marts never ran is rebuilt a month at a time rather than in one transaction.
MAX_PASS_DAYS = 31


def consecutive_runs(days: Iterable[date], max_days: int = MAX_PASS_DAYS) -> list[list[date]]:
    """The distinct days as runs of consecutive days (at most `max_days` each), in order."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][-1] == timedelta(days=1) and len(runs[-1]) < max_days:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def pass_parameters(
    first_day: date, last_day: date, partition_days: Sequence[date]
) -> dict[str, Any]:
    """The bound parameters of a pass's SQL: its first and last day (the queued pairs it takes)
    and the partition days among them (the services with events on them are rebuilt)."""
    return {"first_day": first_day, "last_day": last_day, "partition_days": list(partition_days)}


@dataclass
class _Pass:
    """What one pass (one transaction) read and wrote."""

    queued_days: list[date]
    counts: tuple[int, ...]
    affected_days: list[date]
    step_seconds: dict[str, float]


class _RolledBack(Exception):
    """Ends `explain_marts`' transaction."""


def _rebuild_pass(
    engine: Engine,
    first_day: date,
    last_day: date,
    partition_days: Sequence[date],
    plans: dict[str, str] | None = None,
) -> _Pass:
    params = pass_parameters(first_day, last_day, partition_days)
    step_seconds: dict[str, float] = {}
    with locked_snapshot_transaction(engine, _MARTS_LOCK_KEY) as conn:
        # Client-side binding: CREATE TABLE AS does not take server-side parameters.
        cur = psycopg.ClientCursor(conn)
        saved = [_setting(cur, name) for name in _JOIN_SETTINGS]
        looping = False
        for step, index_loop in _STEPS.items():
            if index_loop != looping:
                looping = index_loop
                for name, value in zip(_JOIN_SETTINGS, saved, strict=True):
                    cur.execute(
                        "select set_config(%s, %s, true)", (name, "off" if looping else value)
                    )
            statement = step_statement(step)
            if plans is not None:
                cur.execute(sql.SQL("explain ") + statement, params)
                plans[step] = "\n".join(str(row[0]) for row in cur.fetchall())
            started = time.perf_counter()
            cur.execute(statement, params)
            staged = _STAGED_TABLES.get(step)
            if staged:
                # temporary tables have no statistics until analysed; without them the planner
                # guesses row counts for the statements that join them
                cur.execute(f"analyze {staged}")
            step_seconds[step] = time.perf_counter() - started
        queued = cur.execute(
            "select distinct event_date from mart_queued order by event_date"
        ).fetchall()
        counts = cur.execute(
            "select"
            " (select count(*) from mart_scope),"
            " (select count(*) from deployment_event_stage),"
            " (select count(*) from deployment_attempt_stage),"
            " (select count(*) from deployment_phase_stage),"
            " (select count(*) from deployment_event_stage as stage"
            "   join mart_scope as scope using (service_id)"
            "   where stage.kind = 'unknown'"
            "   and stage.occur_time >= scope.first_ms and stage.occur_time < scope.end_ms)"
        ).fetchone()
        days = cur.execute(
            "select distinct attempt_date from mart_affected_days order by attempt_date"
        ).fetchall()
        if plans is not None:
            raise _RolledBack
    assert counts is not None
    return _Pass(
        queued_days=[row[0] for row in queued],
        counts=tuple(int(c) for c in counts),
        affected_days=[row[0] for row in days],
        step_seconds=step_seconds,
    )


def _setting(cur: psycopg.ClientCursor[Any], name: str) -> str:
    row = cur.execute("select current_setting(%s)", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def _pending(engine: Engine) -> tuple[int | None, list[date]]:
    """The rule version the passes will apply (logged), and the days the loader queued. The
    analytics schema is read first: a login that may not read it (a loader's) fails naming it."""
    with transaction(engine) as conn:
        version = conn.execute(
            "select max(rule_version) from analytics.event_text_rule_versions"
        ).fetchone()
        rows = conn.execute("select distinct event_date from mart_rebuild_queue").fetchall()
    return (None if version is None else version[0]), [row[0] for row in rows]


def rebuild_marts(engine: Engine, days: Sequence[date]) -> MartRefresh:
    """Recompute the attempts that `days` and the loader's queued days can change, and every
    mart row they feed.

    A service is rebuilt for the days in `days` on which it has events (v1) or records created
    (v2) and for the (service, day) pairs that loads queued (mart_rebuild_queue): v1, from its
    attempt open at the start of its first day (if any) to the end of its last day, or past it to
    the next attempt boundary while its last attempt is still open; v2, the service versions
    those days can change (sql/marts/stage_mart_scope.sql). Consecutive days are one pass (one
    transaction, up to MAX_PASS_DAYS days), so N days cost about one rebuild of the range; the
    queued pairs a pass covers are removed in its transaction. Rerunning it changes nothing.
    With no `days`, only the queued days are rebuilt (nothing when none is queued).
    """
    started = time.perf_counter()
    asked = sorted(set(days))
    partition = set(asked)
    rule_version, queued_days = _pending(engine)
    passes = [
        _rebuild_pass(engine, run[0], run[-1], [d for d in run if d in partition])
        for run in consecutive_runs([*asked, *queued_days])
    ]
    step_seconds: dict[str, float] = {}
    for done in passes:
        for step, seconds in done.step_seconds.items():
            step_seconds[step] = step_seconds.get(step, 0.0) + seconds
    coverage = None
    if asked or queued_days:
        with transaction(engine) as conn:
            # the day's figure over both generations (a row each, migration 0013)
            coverage = conn.execute(
                "select max(rule_version),"
                " sum(events_explained)::double precision / nullif(sum(events), 0)"
                " from analytics.event_text_coverage_daily where event_date = %s"
                " having count(*) > 0",
                (asked[-1] if asked else max(queued_days),),
            ).fetchone()
    refresh = MartRefresh(
        days=tuple(asked),
        queued_days=tuple(sorted({d for p in passes for d in p.queued_days})),
        services=sum(p.counts[0] for p in passes),
        events_read=sum(p.counts[1] for p in passes),
        attempts=sum(p.counts[2] for p in passes),
        phases=sum(p.counts[3] for p in passes),
        affected_days=tuple(sorted({d for p in passes for d in p.affected_days})),
        unclassified_events=sum(p.counts[4] for p in passes),
        seconds=time.perf_counter() - started,
        passes=len(passes),
        step_seconds=step_seconds,
        rule_version=None if coverage is None else coverage[0],
        event_coverage=None if coverage is None else coverage[1],
    )
    log.info(
        "marts of %s (queued: %s): %d services, %d events read, %d attempts and %d phases"
        " rebuilt in %d pass(es) with rule version %s, %.3f s",
        f"{asked[0]} to {asked[-1]}" if asked else "no day asked",
        ", ".join(d.isoformat() for d in refresh.queued_days) or "none",
        refresh.services,
        refresh.events_read,
        refresh.attempts,
        refresh.phases,
        refresh.passes,
        rule_version,
        refresh.seconds,
    )
    return refresh


def explain_marts(engine: Engine, days: Sequence[date]) -> dict[str, str]:
    """The plan (EXPLAIN) of every statement of one pass over the consecutive `days`, each
    planned just before it runs, as in a rebuild; then everything is rolled back."""
    runs = consecutive_runs(days)
    if len(runs) != 1:
        raise ValueError(f"explain_marts needs at most {MAX_PASS_DAYS} consecutive days")
    plans: dict[str, str] = {}
    with suppress(_RolledBack):
        _rebuild_pass(engine, runs[0][0], runs[0][-1], runs[0], plans)
    return plans


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
    with transaction(engine) as conn:
        rows = psycopg.ClientCursor(conn).execute(
            read_sql("marts/select_outcomes_trend.sql"), {"day": day, "trend_days": days}
        )
        return [TrendDay(*row) for row in rows.fetchall()]


def failure_causes_of_day(engine: Engine, day: date) -> list[tuple[str, str, int, int]]:
    """(cause, phase, failures, services) of the day's failed attempts, most frequent first."""
    with transaction(engine) as conn:
        rows = psycopg.ClientCursor(conn).execute(
            read_sql("marts/select_failure_causes_of_day.sql"), {"day": day}
        )
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows.fetchall()]


def query_check(engine: Engine, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of `sql/checks/<name>.sql` (for most checks: the offending rows)."""
    with transaction(engine) as conn:
        rows = psycopg.ClientCursor(conn).execute(read_sql(f"checks/{name}.sql"), params)
        return [tuple(r) for r in rows.fetchall()]
