"""Assets of the analytics layer: the deployment marts, rebuilt per UTC day from service_events
(v1) and service_event_records (v2), both generations in every table (its generation column).

One multi-asset, because the six tables are one consistent rebuild (one transaction per run of
consecutive days): the attempts those days can change, their phases, and the daily rows they roll
up to.
"""

from collections.abc import Iterator
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    DagsterEventType,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from pipelines.assets.checks import (
    MART_CHECK_SPECS,
    coverage_table,
    run_mart_checks,
    unmatched_table,
)
from pipelines.assets.events import service_events
from pipelines.assets.partitions import daily_partitions, day_windows
from pipelines.assets.step_marts import AFFECTED_IN_LOAD_STEP, REBUILT_IN_LOAD_STEP, days_of
from pipelines.failures import failing_fast, transformer_connection
from pipelines.resources import WarehouseResource
from pipelines.warehouse.coverage import coverage_of_days, top_unmatched_texts
from pipelines.warehouse.marts import (
    TrendDay,
    failure_causes_of_day,
    outcomes_trend,
    rebuild_marts,
)
from pipelines.windows import TimeWindow, day_start_ms

MART_DESCRIPTIONS = {
    "deployment_attempts": "One row per deployment attempt: outcome, failure phase and cause.",
    "deployment_phases": "One row per attempt x model x phase: start, end, duration, status.",
    "deployment_outcomes_daily": "Attempts per UTC day and service by outcome; success rate.",
    "deployment_phase_durations_daily": "Phase duration percentiles per UTC day and service.",
    "deployment_failure_causes_daily": "Failed attempts per UTC day, service and cause.",
    "unclassified_event_texts_daily": (
        "Event texts no rule knows, counted per day; rule coverage per day in the metadata."
    ),
}

MART_SPECS = [
    AssetSpec(
        name,
        deps=[service_events],
        description=description,
        group_name="analytics",
        kinds={"postgres"},
        metadata={"table": f"analytics.{name}"},
    )
    for name, description in MART_DESCRIPTIONS.items()
]

BAR_WIDTH = 20


@multi_asset(
    specs=MART_SPECS,
    check_specs=MART_CHECK_SPECS,
    partitions_def=daily_partitions,
    # As service_events: a backfill is one run, whose marts step gets the whole range after
    # its events load.
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=False,
)
def deployment_marts(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Rebuild the marts of the partition's day(s) in one pass, and of every (service, day)
    whose events a load changed since the last rebuild (late events, lookbacks, other runs)."""
    connection = transformer_connection(warehouse.database_url, warehouse.analytics_database_url)
    with failing_fast(connection):
        # drained inside: a generator's failure surfaces where it is iterated
        yield from list(_rebuild_partition_days(context, warehouse))


def _rebuild_partition_days(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    engine = warehouse.get_analytics_engine()
    time_window = context.partition_time_window
    partition_days = [
        date.fromisoformat(key) for key, _ in day_windows(time_window.start, time_window.end)
    ]
    # the days the load step rebuilt as their loads committed (pipelines/assets/step_marts.py):
    # what those loads queued is consumed, and a day's rebuild is the same whichever step ran it
    in_step, in_step_affected = _rebuilt_in_load_step(context)
    refresh = rebuild_marts(engine, [d for d in partition_days if d not in in_step])
    context.log.info(
        "%s to %s (queued days: %s): %s attempts and %s phases rebuilt from %s events; days %s",
        partition_days[0],
        partition_days[-1],
        refresh.as_metadata()["queued_days"] or "none",
        refresh.attempts,
        refresh.phases,
        refresh.events_read,
        refresh.as_metadata()["days_rebuilt"],
    )
    last_day = partition_days[-1]
    rebuilt_days = sorted({*refresh.affected_days, *in_step_affected})
    checked_days = sorted({*partition_days, *refresh.queued_days})
    windows = [
        TimeWindow(day_start_ms(d), day_start_ms(d + timedelta(days=1))) for d in checked_days
    ]
    common: dict[str, int | float | str | MetadataValue] = {
        "window_start": time_window.start.isoformat(),
        "window_end": time_window.end.isoformat(),
        "days_rebuilt": refresh.as_metadata()["days_rebuilt"],
        "days_rebuilt_in_load_step": ", ".join(d.isoformat() for d in sorted(in_step)),
        "queued_days": refresh.as_metadata()["queued_days"],
        "passes": refresh.passes,
        "seconds": round(refresh.seconds, 3),
    }
    extra: dict[str, dict[str, int | float | str | MetadataValue]] = {
        "deployment_attempts": {
            "attempts_rebuilt": refresh.attempts,
            "events_read": refresh.events_read,
            "services": refresh.services,
        },
        "deployment_phases": {"phases_rebuilt": refresh.phases},
        "deployment_outcomes_daily": {
            "trend": MetadataValue.md(trend_table(outcomes_trend(engine, last_day), last_day)),
        },
        "deployment_failure_causes_daily": {
            "preview": MetadataValue.md(causes_table(failure_causes_of_day(engine, last_day))),
        },
        "unclassified_event_texts_daily": {
            "unclassified_events": refresh.unclassified_events,
            "rule_version": refresh.as_metadata()["rule_version"],
            "rule_coverage": MetadataValue.md(
                coverage_table(coverage_of_days(engine, partition_days))
            ),
            "top_unmatched_texts": MetadataValue.md(
                unmatched_table(top_unmatched_texts(engine, partition_days))
            ),
        },
    }
    for spec in MART_SPECS:
        name = spec.key.to_user_string()
        yield MaterializeResult(asset_key=spec.key, metadata={**common, **extra.get(name, {})})
    yield from run_mart_checks(engine, rebuilt_days, windows)


def _rebuilt_in_load_step(context: AssetExecutionContext) -> tuple[set[date], set[date]]:
    """The days whose marts this run's load step rebuilt, and the attempt days those passes
    changed, from the step's materializations in the run's event log (none when the load step
    ran in another run, or rebuilt nothing)."""
    rebuilt: set[date] = set()
    affected: set[date] = set()
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is None or materialization.asset_key != service_events.key:
            continue
        metadata = materialization.metadata
        if REBUILT_IN_LOAD_STEP in metadata:
            rebuilt |= days_of(str(metadata[REBUILT_IN_LOAD_STEP].value))
        if AFFECTED_IN_LOAD_STEP in metadata:
            affected |= days_of(str(metadata[AFFECTED_IN_LOAD_STEP].value))
    return rebuilt, affected


def _bar(fraction: float | None) -> str:
    if fraction is None:
        return ""
    filled = round(fraction * BAR_WIDTH)
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def _minutes(ms: float | None) -> str:
    return "" if ms is None else f"{ms / 60_000:.1f} min"


def trend_table(days: list[TrendDay], last_day: date) -> str:
    """Markdown: per day, attempts, success rate (with a bar) and p95 time to running."""
    lines = [
        f"Daily success rate and p95 time to running, all services, up to {last_day}",
        "",
        "| day | attempts | succeeded | failed | success rate | | p95 time to running |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for d in days:
        rate = "" if d.success_rate is None else f"{d.success_rate:.0%}"
        lines.append(
            f"| {d.day} | {d.attempts} | {d.succeeded} | {d.failed} | {rate} "
            f"| `{_bar(d.success_rate)}` | {_minutes(d.p95_time_to_running_ms)} |"
        )
    if not days:
        lines.append("| (no attempts) | | | | | | |")
    return "\n".join(lines)


def causes_table(rows: list[tuple[str, str, int, int]]) -> str:
    """Markdown: the day's failures by cause and phase, most frequent first."""
    lines = ["| cause | phase | failures | services |", "|---|---|---:|---:|"]
    lines += [f"| {cause} | {phase} | {n} | {services} |" for cause, phase, n, services in rows]
    if not rows:
        lines.append("| (no failures) | | | |")
    return "\n".join(lines)
