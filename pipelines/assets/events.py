"""Assets of the raw layer: the `services` dimension and the `service_events` fact table."""

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from pipelines.assets.partitions import daily_partitions, day_windows
from pipelines.assets.schedules import STEP_RETRY
from pipelines.failures import failing_fast, loader_connection
from pipelines.ingest import load_events_range
from pipelines.resources import ModelArtsResource, WarehouseResource
from pipelines.source.stats import ExtractionStats
from pipelines.warehouse.services import upsert_services
from pipelines.windows import TimeWindow

# Every asset that calls the API is in this pool: its limit (dagster.yaml) caps concurrent callers.
API_POOL = "modelarts_api"


@asset(kinds={"postgres"}, group_name="raw", pool=API_POOL)
def services(modelarts: ModelArtsResource, warehouse: WarehouseResource) -> MaterializeResult:
    """The project's inference services, as the listing call shows them now."""
    with failing_fast(loader_connection(warehouse.database_url)):
        client = modelarts.build_client()
        listed = list(client.list_services())
        upsert_services(warehouse.get_engine(), listed)
    return MaterializeResult(
        metadata={
            "services": len(listed),
            "requests": client.stats.requests,
            "retries": client.stats.retries,
            "throttled": client.stats.throttled,
        }
    )


# A multi_asset of one spec rather than @asset: dagster 1.13 marks `backfill_policy` beta on
# @asset only, with a BetaWarning on every import of the code; the definition is the same.
@multi_asset(
    specs=[
        AssetSpec(
            "service_events",
            deps=[services],
            description="Every service's events of the partition's UTC day(s), one row per "
            "(service_id, occur_time, event_info). Each day is its own transaction and audit row.",
            kinds={"postgres"},
            group_name="raw",
        )
    ],
    partitions_def=daily_partitions,
    # A backfill is one run over its whole range, like `modelarts-etl run/backfill` and the
    # nightly schedule: the API is asked once per service for the range (load_events_range).
    backfill_policy=BackfillPolicy.single_run(),
    pool=API_POOL,
    retry_policy=STEP_RETRY,  # a failed step is retried; permanent errors are not (failing_fast)
)
def service_events(
    context: AssetExecutionContext, modelarts: ModelArtsResource, warehouse: WarehouseResource
) -> MaterializeResult:
    """Load the partition's UTC day(s) of every listed service: one extraction over the
    range, one load (transaction, audit row) per day."""
    with failing_fast(loader_connection(warehouse.database_url)):
        return _load_partition_days(context, modelarts, warehouse)


def _load_partition_days(
    context: AssetExecutionContext, modelarts: ModelArtsResource, warehouse: WarehouseResource
) -> MaterializeResult:
    engine = warehouse.get_engine()
    listing = modelarts.build_client()
    listed = list(listing.list_services())
    upsert_services(engine, listed)
    service_ids = [s.service_id for s in listed]
    time_window = context.partition_time_window

    totals: dict[str, int | float] = {}
    rows = []
    lookback: dict[str, int | float | str] = {}
    segments = list(day_windows(time_window.start, time_window.end))
    days = len(segments)
    if modelarts.lookback_hours > 0 and segments:
        # Late events of the hours before the run's first day: their own load, so that each
        # day's counts stay its own and a late event is counted once, as lookback_inserted.
        first_day, first = segments[0]
        late = TimeWindow(first.start_ms - modelarts.lookback_hours * 3_600_000, first.start_ms)
        segments.insert(0, (first_day, late))
    # One extraction for the whole range (each service asked once, split where dense), then
    # one load per day: see load_events_range.
    reports = load_events_range(
        modelarts.build_client(ExtractionStats()),
        engine,
        service_ids,
        segments,
        modelarts.extract_settings(),
        run_id=context.run.run_id,
    )
    # a step retry of a range that failed half-way loads only the days still missing
    by_window = {report.window: report for report in reports}
    kept = days - sum(1 for _, window in segments[-days:] if window in by_window)
    if len(segments) > days and segments[0][1] in by_window:
        report = by_window[segments[0][1]]
        lookback = {f"lookback_{k}": v for k, v in report.as_metadata().items()}
        lookback["lookback_window"] = str(report.window)
        context.log.info(
            "lookback %s: %s fetched, %s late events inserted",
            report.window,
            report.counts["fetched"],
            report.load.inserted,
        )
    for day, window in segments[-days:]:
        if window not in by_window:
            context.log.info("%s: loaded by an earlier attempt of this run", day)
            continue
        day_counts = by_window[window].as_metadata()
        for key, value in day_counts.items():
            if isinstance(value, int | float) and key != "batch_id":
                totals[key] = round(totals.get(key, 0) + value, 3)
        rows.append((day, day_counts))
        context.log.info(
            "%s: %s services, %s fetched, %s inserted, %s already present, %s quarantined",
            day,
            day_counts["services"],
            day_counts["fetched"],
            day_counts["inserted"],
            day_counts["already_present"],
            day_counts["quarantined"],
        )
    totals["services"] = len(service_ids)
    totals["list_requests"] = listing.stats.requests
    totals["list_retries"] = listing.stats.retries
    totals["list_throttled"] = listing.stats.throttled
    totals["days_loaded_by_earlier_attempt"] = kept
    totals["retries_spent_in_run"] = modelarts.run_budget().spent
    totals["retry_budget"] = modelarts.retry_budget
    return MaterializeResult(
        metadata={
            **totals,
            **lookback,
            # the process's shared limiter as the run left it: what it learnt of the quota
            **modelarts.run_limiter().state().as_metadata(),
            "window_start": time_window.start.isoformat(),
            "window_end": time_window.end.isoformat(),
            "per_day": MetadataValue.md(_per_day_table(rows)),
        }
    )


def _per_day_table(rows: list[tuple[str, dict[str, int | float | str]]]) -> str:
    columns = [
        "services",
        "pages",
        "fetched",
        "inserted",
        "already_present",
        "quarantined",
        "throttled",
        "seconds",
    ]
    lines = [
        "| day | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for day, counts in rows:
        lines.append(f"| {day} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    return "\n".join(lines)
