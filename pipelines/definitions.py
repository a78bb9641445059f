"""The one Definitions object of the project (workspace.yaml and `dagster dev` load it)."""

from __future__ import annotations

from typing import Any

from dagster import Definitions, load_assets_from_modules

from pipelines import settings
from pipelines.assets import deployments, events
from pipelines.resources import ModelArtsResource, WarehouseResource


def build_resources() -> dict[str, Any]:
    """Resources bound to the environment; values are read when a run starts."""
    return {
        "modelarts": ModelArtsResource(**settings.env_bound(settings.MODELARTS_FIELDS)),
        "warehouse": WarehouseResource(**settings.env_bound(settings.WAREHOUSE_FIELDS)),
    }


def build_definitions() -> Definitions:
    """Assets and resources of the project."""
    return Definitions(
        assets=load_assets_from_modules([events, deployments]), resources=build_resources()
    )


defs = build_definitions()
