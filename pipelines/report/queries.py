"""What the report shows, read from the warehouse in one read-only snapshot.

Every query is a file in `sql/report/`; this module only binds the range and types the rows. The
rule-coverage pair (`rule_coverage_per_day`, `top_unmatched_texts`) reads today's tables
(`unclassified_event_texts_daily`, `failure_cause = 'unclassified'`): a richer rule model swaps
those two queries without touching the rest of the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from pipelines.horizon import current_horizon
from pipelines.warehouse.sql_files import read_sql

TOP_SERVICES = 10
TOP_TEXTS = 15


@dataclass(frozen=True)
class OutcomesDay:
    """The deployment attempts that started on a UTC day, by outcome (all services): the report's
    chart and the CLI's table after a run."""

    day: date
    attempts: int
    succeeded: int
    failed: int
    superseded: int
    in_progress: int
    success_rate: float | None  # succeeded / (succeeded + failed); rounded where shown
    # of them, the attempts of new-version (v2) services, and their own success rate
    v2_attempts: int = 0
    v2_success_rate: float | None = None


@dataclass(frozen=True)
class FailureCount:
    """Failed attempts of the range for one cause or phase (`key`), and the services hit."""

    key: str
    failures: int
    services: int


@dataclass(frozen=True)
class PhaseDurations:
    day: date
    phase: str
    phases: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class FailingService:
    service_id: str
    service_name: str | None
    attempts: int
    succeeded: int
    failed: int
    success_rate: float | None
    generation: str = "v1"  # v1: an old-version service; v2: a new-version one


@dataclass(frozen=True)
class OpenAttempt:
    service_id: str
    service_name: str | None
    started_at: datetime
    current_phase: str | None
    current_model: str | None
    models: str
    events: int


@dataclass(frozen=True)
class CoverageDay:
    day: date
    events: int
    unknown_text_events: int
    failures: int
    unclassified_failures: int
    unclassified_share: float | None


@dataclass(frozen=True)
class UnmatchedText:
    kind: str
    text: str
    occurrences: int
    services: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class LoadDay:
    day: date
    loaded: bool
    first_loaded_at: datetime | None
    first_load_events: int
    later_loads: int
    late_events: int
    last_loaded_at: datetime | None


@dataclass(frozen=True)
class WarehouseFreshness:
    last_loaded_day: date | None
    last_load_finished_at: datetime | None
    failed_loads_7d: int
    marts_refreshed_at: datetime | None


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows, for the UTC days first_day..last_day."""

    first_day: date
    last_day: date
    outcomes: list[OutcomesDay]
    causes: list[FailureCount]
    phases: list[FailureCount]
    durations: list[PhaseDurations]
    failing_services: list[FailingService]
    open_attempts: list[OpenAttempt]
    coverage: list[CoverageDay]
    unmatched: list[UnmatchedText]
    loads: list[LoadDay]
    freshness: WarehouseFreshness
    # never loaded, wholly beyond the API's retention: lost for good (sql/migrations/0017)
    unrecoverable: list[date] = field(default_factory=list)


def _rows(conn: Connection, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.exec_driver_sql(read_sql(f"report/{name}.sql"), params)]


def rule_coverage_per_day(conn: Connection, params: dict[str, Any]) -> list[CoverageDay]:
    """Per day: events, texts outside the vocabulary, failures and those no rule classified."""
    return [CoverageDay(*r) for r in _rows(conn, "select_rule_coverage_per_day", params)]


def top_unmatched_texts(conn: Connection, params: dict[str, Any]) -> list[UnmatchedText]:
    """The most frequent unknown event texts and unclassified failure texts of the range."""
    return [UnmatchedText(*r) for r in _rows(conn, "select_top_unmatched_texts", params)]


def read_report_data(engine: Engine, first_day: date, last_day: date) -> ReportData:
    """All sections of the report from one repeatable-read, read-only snapshot, so the
    sections agree with each other even while a load or a mart rebuild commits."""
    params: dict[str, Any] = {
        "first_day": first_day,
        "last_day": last_day,
        "top_services": TOP_SERVICES,
        "top_texts": TOP_TEXTS,
    }
    with engine.connect() as conn:
        conn.exec_driver_sql("set transaction isolation level repeatable read, read only")
        freshness = _rows(conn, "select_warehouse_freshness", params)[0]
        data = ReportData(
            first_day=first_day,
            last_day=last_day,
            outcomes=[OutcomesDay(*r) for r in _rows(conn, "select_outcomes_per_day", params)],
            causes=[FailureCount(*r) for r in _rows(conn, "select_failures_by_cause", params)],
            phases=[FailureCount(*r) for r in _rows(conn, "select_failures_by_phase", params)],
            durations=[
                PhaseDurations(*r) for r in _rows(conn, "select_phase_durations_per_day", params)
            ],
            failing_services=[
                FailingService(*r) for r in _rows(conn, "select_top_failing_services", params)
            ],
            open_attempts=[
                OpenAttempt(*r) for r in _rows(conn, "select_in_progress_attempts", params)
            ],
            coverage=rule_coverage_per_day(conn, params),
            unmatched=top_unmatched_texts(conn, params),
            loads=[LoadDay(*r) for r in _rows(conn, "select_load_freshness_per_day", params)],
            freshness=WarehouseFreshness(*freshness),
            unrecoverable=[
                day
                for day, state in conn.exec_driver_sql(
                    read_sql("ops/day_load_states.sql"),
                    {**params, "first_recoverable_day": current_horizon().first_recoverable_day},
                )
                if state == "unrecoverable"
            ],
        )
        conn.rollback()
    return data
