"""Asset checks of the deployment marts, run on the days a materialization rebuilt.

Each check is a query in `sql/checks/` returning the offending rows; a check passes when it
returns none, except the rule coverage, which warns below a threshold (PIPELINES_MIN_RULE_COVERAGE).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, timedelta
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue
from sqlalchemy import Engine

from pipelines import settings
from pipelines.horizon import Horizon, describe_days
from pipelines.warehouse.coverage import (
    DayCoverage,
    UnmatchedText,
    coverage_of_days,
    top_unmatched_texts,
)
from pipelines.warehouse.marts import day_parameters, query_check
from pipelines.windows import TimeWindow

STARTS_HAVE_ATTEMPTS = AssetCheckSpec(
    "every_start_has_its_attempt",
    asset="deployment_attempts",
    description=(
        "Every deployment start stored on the checked days (service_events) has its attempt, "
        "or its day is queued for the next rebuild (mart_rebuild_queue): no start is lost."
    ),
)
NO_ORPHAN_PHASES = AssetCheckSpec(
    "no_orphan_phases",
    asset="deployment_phases",
    description="Every phase row belongs to an attempt.",
)
OUTCOMES_RECONCILE = AssetCheckSpec(
    "outcomes_reconcile_with_attempts",
    asset="deployment_outcomes_daily",
    description="Daily outcome counts equal the attempts' outcomes; failures by cause add up.",
)
UNCLASSIFIED_SHARE = AssetCheckSpec(
    "unclassified_share_below_threshold",
    asset="unclassified_event_texts_daily",
    description=(
        "Rule coverage: warns when the event text rules explain less than "
        f"{settings.MIN_RULE_COVERAGE} (default {settings.DEFAULT_MIN_RULE_COVERAGE:.0%}) of a "
        "day's events or of its attempts; metadata: coverage per day, top unmatched texts."
    ),
)

MART_CHECK_SPECS = [STARTS_HAVE_ATTEMPTS, NO_ORPHAN_PHASES, OUTCOMES_RECONCILE, UNCLASSIFIED_SHARE]


def _offending(spec: AssetCheckSpec, rows: list[tuple[Any, ...]], days: str) -> AssetCheckResult:
    sample = "\n".join(f"- `{row}`" for row in rows[:10])
    return AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=not rows,
        metadata={
            "offending_rows": len(rows),
            "days_checked": days,
            **({"sample": MetadataValue.md(sample)} if rows else {}),
        },
    )


def run_mart_checks(
    engine: Engine, rebuilt_days: Sequence[date], windows: Sequence[TimeWindow]
) -> list[AssetCheckResult]:
    """The four checks over the rebuilt attempt days and the materialized days (the starts:
    both, since a day whose starts a rebuild missed has no rebuilt attempt to name it)."""
    days = sorted(set(rebuilt_days))
    days_text = ", ".join(d.isoformat() for d in days)
    start_days = sorted({*days, *(_day_of(w) for w in windows)})
    results = [
        _offending(
            STARTS_HAVE_ATTEMPTS,
            query_check(engine, "lost_deployment_starts", {"days": start_days}),
            ", ".join(d.isoformat() for d in start_days),
        ),
        _offending(
            NO_ORPHAN_PHASES, query_check(engine, "orphan_phases", {"days": days}), days_text
        ),
        _offending(
            OUTCOMES_RECONCILE,
            query_check(engine, "unreconciled_outcomes", {"days": days}),
            days_text,
        ),
    ]
    results.append(coverage_check([_day_of(w) for w in windows], engine))
    return results


def _day_of(window: TimeWindow) -> date:
    day = day_parameters(window)["day"]
    assert isinstance(day, date)
    return day


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def coverage_table(days: Sequence[DayCoverage]) -> str:
    """Markdown: per day, the events and attempts the rules explain, and the rule version."""
    lines = [
        "| day | rule version | events | unknown | event coverage | attempts | with unknown "
        "texts | attempt coverage | failures of unknown cause |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {d.day} | {d.rule_version if d.rule_version is not None else ''} | {d.events} "
        f"| {d.unclassified_events} | {_share(d.event_coverage)} | {d.attempts} "
        f"| {d.unexplained_attempts} | {_share(d.attempt_coverage)} | {d.unknown_cause_failures} |"
        for d in days
    ]
    return "\n".join(lines)


def unmatched_table(texts: Sequence[UnmatchedText]) -> str:
    """Markdown: the most frequent shapes of unknown texts (numbers, ids, quotes collapsed)."""

    def cell(text: str) -> str:
        return " ".join(text.replace("|", "\\|").replace("`", "'").split())

    lines = ["| text shape | events | services | example |", "|---|---:|---:|---|"]
    lines += [
        f"| `{cell(t.shape)}` | {t.events} | {t.services} | {cell(t.example)} |" for t in texts
    ]
    if not texts:
        lines.append("| (every text known) | | | |")
    return "\n".join(lines)


def coverage_check(days: Sequence[date], engine: Engine) -> AssetCheckResult:
    """WARN when the rules explain less than the threshold of a day's events or attempts."""
    threshold = settings.min_rule_coverage()
    coverage = coverage_of_days(engine, days)
    below = [d for d in coverage if d.below(threshold)]
    event_shares = [d.event_coverage for d in coverage if d.event_coverage is not None]
    attempt_shares = [d.attempt_coverage for d in coverage if d.attempt_coverage is not None]
    return AssetCheckResult(
        asset_key=UNCLASSIFIED_SHARE.asset_key,
        check_name=UNCLASSIFIED_SHARE.name,
        passed=not below,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"the rules explain less than {threshold:.2%} on {', '.join(str(d.day) for d in below)}"
            if below
            else None
        ),
        metadata={
            "threshold": threshold,
            "days_below_threshold": ", ".join(str(d.day) for d in below),
            "events": sum(d.events for d in coverage),
            "unclassified_events": sum(d.unclassified_events for d in coverage),
            "unexplained_attempts": sum(d.unexplained_attempts for d in coverage),
            "unclassified_failures": sum(d.unclassified_failures for d in coverage),
            "worst_day_event_coverage": min(event_shares, default=1.0),
            "worst_day_attempt_coverage": min(attempt_shares, default=1.0),
            "coverage": MetadataValue.md(coverage_table(coverage)),
            "top_unmatched_texts": MetadataValue.md(
                unmatched_table(top_unmatched_texts(engine, days))
            ),
        },
    )


NO_UNRECOVERABLE_DAYS = AssetCheckSpec(
    "no_unrecoverable_days",
    asset="service_events",
    description=(
        "Warns naming the days of the partitions that were never loaded and lie wholly beyond "
        f"the API's retention ({settings.MODELARTS_RETENTION_DAYS}, default "
        f"{settings.DEFAULT_RETENTION_DAYS} days): their events are lost for good; metadata also "
        "names the days not loaded yet that are about to fall out of the horizon."
    ),
)


def horizon_check(engine: Engine, first_day: date, horizon: Horizon) -> AssetCheckResult:
    """WARN when a day of first_day..yesterday is unrecoverable; name those about to be."""
    from pipelines.catchup import WARN_BEFORE
    from pipelines.operate import day_states

    last_day = horizon.now.astimezone(UTC).date() - timedelta(days=1)
    states = day_states(engine, first_day, last_day, horizon) if first_day <= last_day else {}
    lost = [d for d, state in sorted(states.items()) if state == "unrecoverable"]
    leaving = [
        d
        for d, state in sorted(states.items())
        if state == "not loaded" and horizon.time_left(d) <= WARN_BEFORE
    ]
    return AssetCheckResult(
        asset_key=NO_UNRECOVERABLE_DAYS.asset_key,
        check_name=NO_UNRECOVERABLE_DAYS.name,
        passed=not lost,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{len(lost)} day(s) never loaded and beyond the API's retention, lost for good: "
            + describe_days(lost)
            if lost
            else None
        ),
        metadata={
            "retention_days": horizon.retention_days,
            "first_recoverable_day": horizon.first_recoverable_day.isoformat(),
            "unrecoverable_days": describe_days(lost),
            "unrecoverable_day_count": len(lost),
            "days_leaving_horizon": describe_days(leaving),
        },
    )
