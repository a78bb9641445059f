"""The one Definitions object of the project (workspace.yaml and `dagster dev` load it)."""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetsDefinition,
    Definitions,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    load_assets_from_modules,
)

from pipelines import settings
from pipelines.assets import deployments, events
from pipelines.assets.partitions import daily_partitions
from pipelines.assets.schedules import build_nightly_schedule, nightly_job
from pipelines.assets.sensors import AlertWebhookResource, alert_on_run_failure
from pipelines.resources import ModelArtsResource, WarehouseResource

# The nightly run starts at 00:30 UTC by default; a day's partitions are late after 03:00 UTC.
FRESHNESS_DEADLINE_CRON = "0 3 * * *"


def build_resources() -> dict[str, Any]:
    """Resources bound to the environment; values are read when a run starts."""
    return {
        "modelarts": ModelArtsResource(**settings.env_bound(settings.MODELARTS_FIELDS)),
        "warehouse": WarehouseResource(**settings.env_bound(settings.WAREHOUSE_FIELDS)),
        "alerts": AlertWebhookResource(**settings.env_bound(settings.ALERT_FIELDS)),
    }


def build_definitions() -> Definitions:
    """Assets, checks, the nightly schedule, alerts and resources of the project."""
    assets = [
        a
        for a in load_assets_from_modules([events, deployments])
        if isinstance(a, AssetsDefinition)
    ]
    daily = [a for a in assets if a.partitions_def == daily_partitions]
    freshness = build_time_partition_freshness_checks(
        assets=daily, deadline_cron=FRESHNESS_DEADLINE_CRON, timezone="UTC"
    )
    return Definitions(
        assets=assets,
        asset_checks=freshness,
        jobs=[nightly_job],
        schedules=[build_nightly_schedule(settings.nightly_schedule())],
        sensors=[
            alert_on_run_failure,
            build_sensor_for_freshness_checks(freshness_checks=freshness),
        ],
        resources=build_resources(),
    )


defs = build_definitions()
