"""The one Definitions object of the project (workspace.yaml and `dagster dev` load it)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from dagster import (
    AssetsDefinition,
    Definitions,
    FreshnessPolicy,
    apply_freshness_policy,
    load_assets_from_modules,
    map_asset_specs,
)

from pipelines import settings
from pipelines.assets import deployments, events, report
from pipelines.assets.catchup import catch_up_missed_days
from pipelines.assets.partitions import daily_partitions
from pipelines.assets.schedules import build_nightly_schedule, nightly_job
from pipelines.assets.sensors import AlertWebhookResource, alert_on_run_failure
from pipelines.pool_wait import pool_wait_executor
from pipelines.resources import ModelArtsResource, WarehouseResource

# The nightly run starts at 00:30 UTC by default; a day's partitions are late after 03:00 UTC.
FRESHNESS_DEADLINE_CRON = "0 3 * * *"
# Yesterday's partition can only be loaded once its UTC day is over, so the materialization that
# keeps a daily asset fresh falls between 00:00 and the 03:00 deadline. The daemon evaluates the
# policy per asset, not per partition: any partition materialized in that window counts.
DAILY_FRESHNESS = FreshnessPolicy.cron(
    deadline_cron=FRESHNESS_DEADLINE_CRON, lower_bound_delta=timedelta(hours=3), timezone="UTC"
)


def build_resources() -> dict[str, Any]:
    """Resources bound to the environment; values are read when a run starts."""
    return {
        "modelarts": ModelArtsResource(**settings.env_bound(settings.MODELARTS_FIELDS)),
        "warehouse": WarehouseResource(**settings.env_bound(settings.WAREHOUSE_FIELDS)),
        "alerts": AlertWebhookResource(**settings.env_bound(settings.ALERT_FIELDS)),
    }


def build_definitions() -> Definitions:
    """Assets (the daily ones with a freshness policy), the nightly schedule, alerts and
    resources of the project."""
    loaded = [
        a
        for a in load_assets_from_modules([events, deployments, report])
        if isinstance(a, AssetsDefinition)
    ]
    with_freshness = partial(apply_freshness_policy, policy=DAILY_FRESHNESS)
    assets = [
        map_asset_specs(with_freshness, [a])[0] if a.partitions_def == daily_partitions else a
        for a in loaded
    ]
    return Definitions(
        assets=assets,
        jobs=[nightly_job],
        schedules=[build_nightly_schedule(settings.nightly_schedule())],
        sensors=[alert_on_run_failure, catch_up_missed_days],
        resources=build_resources(),
        # Steps waiting for a pool slot sleep, log and give up (Dagster's own wait spins: issue
        # #12); the patch is installed by the run worker that creates the executor.
        executor=pool_wait_executor,
    )


defs = build_definitions()
