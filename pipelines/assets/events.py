"""Assets of the raw layer: the `services` dimension and the fact tables, `service_events` (v1)
and `service_event_records` (v2), loaded by the same asset in every run (MODELARTS_API)."""

import logging
import threading
from collections.abc import Callable
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from sqlalchemy import Engine

from pipelines.assets.checks import NO_UNRECOVERABLE_DAYS, horizon_check
from pipelines.assets.partitions import PARTITIONS_START, daily_partitions, day_windows
from pipelines.assets.schedules import STEP_RETRY
from pipelines.assets.step_marts import MartsAsDaysCommit
from pipelines.failures import failing_fast, loader_connection
from pipelines.horizon import current_horizon
from pipelines.ingest import WindowReport, load_events_range
from pipelines.ingest_records import RecordWindowReport, load_records_range
from pipelines.resources import ModelArtsResource, WarehouseResource
from pipelines.source.client import ModelArtsClient
from pipelines.source.errors import ModelArtsAPIError, is_unpublished_api
from pipelines.source.models import ServiceInfo
from pipelines.source.records import V2ServiceInfo, list_v2_services
from pipelines.source.stats import ExtractionStats
from pipelines.warehouse.records import upsert_v2_services
from pipelines.warehouse.services import upsert_services
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

# Every asset that calls the API is in this pool: its limit (dagster.yaml) caps concurrent callers.
API_POOL = "modelarts_api"


@asset(kinds={"postgres"}, group_name="raw", pool=API_POOL)
def services(modelarts: ModelArtsResource, warehouse: WarehouseResource) -> MaterializeResult:
    """The project's inference services of both generations, as the listing calls show them."""
    with failing_fast(loader_connection(warehouse.database_url)):
        client = modelarts.build_client()
        listed, v2_listed = list_and_upsert_services(client, modelarts, warehouse)
    return MaterializeResult(
        metadata={
            "services": len(listed) + len(v2_listed),
            "v1_services": len(listed),
            "v2_services": len(v2_listed),
            "requests": client.stats.requests,
            "retries": client.stats.retries,
            "throttled": client.stats.throttled,
        }
    )


def list_and_upsert_services(
    client: ModelArtsClient, modelarts: ModelArtsResource, warehouse: WarehouseResource
) -> tuple[list[ServiceInfo], list[V2ServiceInfo]]:
    """List the services of the generations MODELARTS_API names (one call for a generation
    the project has none of) and refresh them in the `services` dimension."""
    generations = modelarts.generations()
    engine = warehouse.get_engine()
    listed = _list_v1_services(client, generations)
    upsert_services(engine, listed)
    v2_listed = list(list_v2_services(client)) if "v2" in generations else []
    upsert_v2_services(engine, v2_listed)
    return listed, v2_listed


def _list_v1_services(client: ModelArtsClient, generations: tuple[str, ...]) -> list[ServiceInfo]:
    """The v1 listing; under MODELARTS_API=auto, none when the region no longer publishes the
    /v1 API (404 APIG.0101): the vendor is discontinuing old-version services, and a project
    with only new-version ones must not fail every run over it. MODELARTS_API=v1 still fails."""
    if "v1" not in generations:
        return []
    try:
        return list(client.list_services())
    except ModelArtsAPIError as exc:
        if not is_unpublished_api(exc) or "v2" not in generations:
            raise
        log.warning(
            "the /v1 services call is not published in this region (%s): no old-version "
            "services, only the v2 generation is loaded",
            exc.error_code,
        )
        return []


# A multi_asset of one spec rather than @asset: dagster 1.13 marks `backfill_policy` beta on
# @asset only, with a BetaWarning on every import of the code; the definition is the same.
@multi_asset(
    specs=[
        AssetSpec(
            "service_events",
            deps=[services],
            description="Every service's events of the partition's UTC day(s), one row per "
            "(service_id, occur_time, event_info); and every new-version (v2) service's event "
            "records created on them, into service_event_records. Each day and generation is its "
            "own transaction and audit row.",
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
    listed, v2_listed = list_and_upsert_services(listing, modelarts, warehouse)
    # the `services` table is written here too: recorded as a materialization of its asset, so
    # that the nightly job keeps it materialized (the UI warns before materializing anything
    # whose upstream never was)
    context.log_event(
        AssetMaterialization(
            asset_key=services.key,
            description="services of both generations listed and upserted by service_events",
            metadata={
                "services": len(listed) + len(v2_listed),
                "v1_services": len(listed),
                "v2_services": len(v2_listed),
            },
        )
    )
    service_ids = [s.service_id for s in listed]
    if modelarts.lookback_hours > 0 and segments:
        # Late events of the hours before the run's first day: their own load, so that each
        # day's counts stay its own and a late event is counted once, as lookback_inserted.
        first_day, first = segments[0]
        late = TimeWindow(first.start_ms - modelarts.lookback_hours * 3_600_000, first.start_ms)
        segments.insert(0, (first_day, late))
    generations = [
        *(["v1"] if "v1" in modelarts.generations() else []),
        *(["v2"] if v2_listed else []),
    ]
    step_marts = MartsAsDaysCommit(
        engine,
        warehouse.get_analytics_engine(),
        context.run.run_id,
        [(date.fromisoformat(key), window) for key, window in segments[-days:]],
        generations if _marts_in_run(context) else [],
    )
    with step_marts:
        reports, v2_reports = _load_generations(
            context, modelarts, engine, service_ids, [s.service_id for s in v2_listed], segments
        )
    if v2_reports:
        totals.update(_v2_totals(v2_reports))
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
    totals["services"] = len(service_ids) + len(v2_listed)
    totals["v1_services"] = len(service_ids)
    totals["v2_services"] = len(v2_listed)
    totals["list_requests"] = listing.stats.requests
    totals["list_retries"] = listing.stats.retries
    totals["list_throttled"] = listing.stats.throttled
    totals["days_loaded_by_earlier_attempt"] = kept
    totals["retries_spent_in_run"] = modelarts.run_budget().spent
    totals["retry_budget"] = modelarts.retry_budget
    return MaterializeResult(
        check_results=[horizon_check(engine, PARTITIONS_START, horizon)],
        metadata={
            **totals,
            "days_beyond_retention": ", ".join(beyond),
            **lookback,
            # the days whose marts this step rebuilt as their loads committed
            **step_marts.done.as_metadata(),
            # the process's shared limiter as the run left it: what it learnt of the quota
            **modelarts.run_limiter().state().as_metadata(),
            "window_start": time_window.start.isoformat(),
            "window_end": time_window.end.isoformat(),
            "per_day": MetadataValue.md(_per_day_table(rows)),
        },
    )


def _marts_in_run(context: AssetExecutionContext) -> bool:
    """Whether this run materializes the marts too: only then are they rebuilt as days load.
    (The steps the run executes; the job of a run asked for a subset of assets holds only it.)"""
    steps = context.run.step_keys_to_execute
    if steps is not None:
        return "deployment_marts" in steps
    return AssetKey("deployment_attempts") in context.job_def.asset_layer.executable_asset_keys


def _load_generations(
    context: AssetExecutionContext,
    modelarts: ModelArtsResource,
    engine: Engine,
    service_ids: list[str],
    v2_service_ids: list[str],
    segments: list[tuple[str, TimeWindow]],
) -> tuple[list[WindowReport], list[RecordWindowReport]]:
    """The range's loads of both generations."""
    # One extraction for the whole range (each service asked once, split where dense), then
    # one load per day: see load_events_range. The v2 records likewise (load_records_range),
    # at the same time in a thread of their own: both generations' requests go through the
    # process's one limiter (modelarts.run_limiter()), and each keeps its own days and audit rows.
    extract_settings = modelarts.extract_settings()
    v2_side = _Beside(
        lambda: (
            load_records_range(
                modelarts.build_client(ExtractionStats()),
                engine,
                v2_service_ids,
                segments,
                workers=extract_settings.workers,
                # v2 pages hold at most 500 records: MODELARTS_PAGE_LIMIT applies below that
                page_limit=extract_settings.page_limit,
                run_id=context.run.run_id,
            )
            if v2_service_ids  # a project without v2 services: its one listing call, no loads
            else []
        )
    )
    try:
        reports = (
            load_events_range(
                modelarts.build_client(ExtractionStats()),
                engine,
                service_ids,
                segments,
                extract_settings,
                run_id=context.run.run_id,
            )
            if "v1" in modelarts.generations()
            else []
        )
    except BaseException:
        # the v1 error is the step's; the v2 load ends (its days commit or record their
        # failure) before the step fails, and its own error is logged
        v2_side.wait(log_error=True)
        raise
    v2_reports = v2_side.wait()
    return reports, v2_reports


def _v2_totals(reports: list[RecordWindowReport]) -> dict[str, int | float]:
    """The v2 loads' counts summed over the range's days, named v2_*."""
    out: dict[str, int | float] = {}
    for report in reports:
        for key, value in report.as_metadata().items():
            if isinstance(value, int | float) and key != "batch_id":
                out[f"v2_{key}"] = round(out.get(f"v2_{key}", 0) + value, 3)
    return out


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


class _Beside:
    """A function run in a thread beside the caller's work: `wait()` returns its result or
    raises its error in the caller's thread."""

    def __init__(self, function: Callable[[], list[RecordWindowReport]]):
        self._result: list[RecordWindowReport] = []
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result = function()
            except BaseException as exc:  # raised in the caller's thread by wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name="v2-records", daemon=True)
        self._thread.start()

    def wait(self, *, log_error: bool = False) -> list[RecordWindowReport]:
        self._thread.join()
        if self._error is not None:
            if log_error:
                log.error("the v2 records' load failed too", exc_info=self._error)
                return []
            raise self._error
        return self._result
