"""Assets of the raw layer: the `services` dimension and the `service_events` fact table."""

from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from pipelines.assets.checks import NO_UNRECOVERABLE_DAYS, horizon_check
from pipelines.assets.partitions import PARTITIONS_START, daily_partitions, day_windows
from pipelines.assets.schedules import STEP_RETRY
from pipelines.failures import failing_fast, loader_connection
from pipelines.horizon import current_horizon
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
    check_specs=[NO_UNRECOVERABLE_DAYS],
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
    time_window = context.partition_time_window

    totals: dict[str, int | float] = {}
    rows = []
    lookback: dict[str, int | float | str] = {}
    segments = list(day_windows(time_window.start, time_window.end))
    # A day wholly beyond the API's retention would come back empty, and be recorded as a quiet
    # day: it is not asked for (a day never loaded stays `unrecoverable`, a loaded one as it is).
    horizon = current_horizon()
    beyond = [key for key, _ in segments if horizon.unrecoverable(date.fromisoformat(key))]
    segments = segments[len(beyond) :]
    if beyond:
        context.log.warning(
            "%d day(s) %s..%s beyond the API's %d-day retention (MODELARTS_RETENTION_DAYS): "
            "nothing loaded for them",
            len(beyond), beyond[0], beyond[-1], horizon.retention_days,
        )  # fmt: skip
    days = len(segments)
    if not segments:
        return MaterializeResult(
            check_results=[horizon_check(warehouse.get_engine(), PARTITIONS_START, horizon)],
            metadata={
                "days_beyond_retention": ", ".join(beyond),
                "window_start": time_window.start.isoformat(),
                "window_end": time_window.end.isoformat(),
            },
        )
    engine = warehouse.get_engine()
    listing = modelarts.build_client()
    listed = list(listing.list_services())
    upsert_services(engine, listed)
    service_ids = [s.service_id for s in listed]
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
    if len(reports) > days:
        report = reports.pop(0)
        lookback = {f"lookback_{k}": v for k, v in report.as_metadata().items()}
        lookback["lookback_window"] = str(report.window)
        context.log.info(
            "lookback %s: %s fetched, %s late events inserted",
            report.window,
            report.counts["fetched"],
            report.load.inserted,
        )
    for (day, _), report in zip(segments[-days:], reports, strict=True):
        day_counts = report.as_metadata()
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
    totals["retries_spent_in_run"] = modelarts.run_budget().spent
    totals["retry_budget"] = modelarts.retry_budget
    return MaterializeResult(
        check_results=[horizon_check(engine, PARTITIONS_START, horizon)],
        metadata={
            **totals,
            "days_beyond_retention": ", ".join(beyond),
            **lookback,
            "window_start": time_window.start.isoformat(),
            "window_end": time_window.end.isoformat(),
            "per_day": MetadataValue.md(_per_day_table(rows)),
        },
    )


def _per_day_table(rows: list[tuple[str, dict[str, int | float | str]]]) -> str:
    columns = [
        "services",
        "pages",
        "fetched",
        "inserted",
        "already_present",
        "quarantined",
        "seconds",
    ]
    lines = [
        "| day | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for day, counts in rows:
        lines.append(f"| {day} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    return "\n".join(lines)
