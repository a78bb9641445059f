"""Asset checks of the deployment marts, run on the days a materialization rebuilt.

Each check is a query in `sql/checks/` returning the offending rows; a check passes when it
returns none, except the unclassified share, which warns above a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue
from sqlalchemy import Engine

from pipelines.source.models import TimeWindow
from pipelines.warehouse.marts import day_parameters, query_check

# Above this share of the day's events (unknown texts + unclassified failures) a person should
# look at analytics.unclassified_event_texts_daily and add vocabulary or rules.
UNCLASSIFIED_SHARE_THRESHOLD = 0.01

UNIQUE_KEYS = AssetCheckSpec(
    "unique_mart_keys",
    asset="deployment_attempts",
    description="No key appears twice in any deployment mart on the rebuilt days.",
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
        "Warns when unknown event texts and unclassified failures exceed "
        f"{UNCLASSIFIED_SHARE_THRESHOLD:.0%} of the day's events."
    ),
)

MART_CHECK_SPECS = [UNIQUE_KEYS, NO_ORPHAN_PHASES, OUTCOMES_RECONCILE, UNCLASSIFIED_SHARE]


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
    """The four checks over the rebuilt attempt days and the materialized days."""
    days = sorted(set(rebuilt_days))
    days_text = ", ".join(d.isoformat() for d in days)
    results = [
        _offending(
            UNIQUE_KEYS, query_check(engine, "duplicate_mart_keys", {"days": days}), days_text
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
    events = unclassified = failures = 0
    worst = 0.0
    for window in windows:
        row = query_check(engine, "unclassified_share", day_parameters(window))[0]
        events += int(row[0])
        unclassified += int(row[1])
        failures += int(row[2])
        worst = max(worst, float(row[3] or 0.0))
    results.append(
        AssetCheckResult(
            asset_key=UNCLASSIFIED_SHARE.asset_key,
            check_name=UNCLASSIFIED_SHARE.name,
            passed=worst <= UNCLASSIFIED_SHARE_THRESHOLD,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "events": events,
                "unclassified_events": unclassified,
                "unclassified_failures": failures,
                "worst_day_share": round(worst, 6),
                "threshold": UNCLASSIFIED_SHARE_THRESHOLD,
            },
        )
    )
    return results
