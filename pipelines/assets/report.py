"""The deployment-health report as an asset: after the marts of a run's days are rebuilt, the
report of the 14 days up to the last of them is written under PIPELINES_DATA_DIR/reports/, and
its materialization carries the file's path and a preview (the Dagster UI shows both)."""

from datetime import timedelta
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from pipelines import settings
from pipelines.assets.deployments import MART_SPECS
from pipelines.assets.partitions import daily_partitions
from pipelines.resources import WarehouseResource

REPORTS_DIR = "reports"


def report_path(data_dir: str, last_day: str) -> Path:
    """Where the report ending on `last_day` is written: one file per last day."""
    return Path(data_dir) / REPORTS_DIR / f"deployment-report-{last_day}.html"


# multi_asset with one spec, as service_events: `backfill_policy` is a beta parameter of @asset
# only, with a BetaWarning on every import of the code.
@multi_asset(
    specs=[
        AssetSpec(
            "deployment_report",
            deps=[spec.key for spec in MART_SPECS],
            description=(
                "The deployment-health report (one self-contained HTML file) of the 14 UTC days "
                "up to the partition's last day, written under PIPELINES_DATA_DIR/reports/."
            ),
            group_name="analytics",
            kinds={"html"},
        )
    ],
    partitions_def=daily_partitions,
    # as the marts: a backfill's run covers up to a week, and writes the report of its last day
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=7),
)
def deployment_report(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """Write the report of the 14 days up to the run's last day; metadata: path and preview."""
    # matplotlib is imported by the run that draws, not by every load of the definitions
    from pipelines.report.build import default_range, write_report

    last_day = (context.partition_time_window.end - timedelta(days=1)).date()
    first_day, _ = default_range(last_day)
    path = report_path(warehouse.data_dir, last_day.isoformat())
    report = write_report(
        warehouse.get_analytics_engine(),
        first_day,
        last_day,
        path,
        settings.max_unclassified_share(),
    )
    context.log.info("deployment report %s..%s written to %s", first_day, last_day, path)
    summary = report.summary()
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path.resolve())),
            "preview": MetadataValue.md(report.preview_markdown()),
            "bytes": report.bytes,
            "seconds": round(report.seconds, 3),
            **{k: v for k, v in summary.items() if v is not None},
        }
    )
