"""Every environment variable the pipeline reads, in one place.

Resources bind to these through `dagster.EnvVar`, so values are read when a run starts, not when
the code is imported, and secrets never show in the Dagster UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

DATABASE_URL = "DATABASE_URL"
DATA_DIR = "PIPELINES_DATA_DIR"
MODELARTS_ENDPOINT = "MODELARTS_ENDPOINT"
MODELARTS_PROJECT_ID = "MODELARTS_PROJECT_ID"
MODELARTS_TOKEN = "MODELARTS_TOKEN"
MODELARTS_OFFSET_MODE = "MODELARTS_OFFSET_MODE"
MODELARTS_WORKERS = "MODELARTS_WORKERS"
MODELARTS_PAGE_LIMIT = "MODELARTS_PAGE_LIMIT"
MODELARTS_MAX_REQUESTS_PER_S = "MODELARTS_MAX_REQUESTS_PER_S"
MODELARTS_RETRY_BUDGET = "MODELARTS_RETRY_BUDGET"
MODELARTS_MAX_RETRIES = "MODELARTS_MAX_RETRIES"
MODELARTS_SPLIT_THRESHOLD = "MODELARTS_SPLIT_THRESHOLD"
MODELARTS_LOOKBACK_HOURS = "MODELARTS_LOOKBACK_HOURS"
MODELARTS_CA_BUNDLE = "MODELARTS_CA_BUNDLE"
IAM_ENDPOINT = "HUAWEICLOUD_IAM_ENDPOINT"
IAM_USERNAME = "HUAWEICLOUD_USERNAME"
IAM_PASSWORD = "HUAWEICLOUD_PASSWORD"
IAM_DOMAIN = "HUAWEICLOUD_DOMAIN"
IAM_REGION = "HUAWEICLOUD_REGION"

NIGHTLY_CRON = "PIPELINES_NIGHTLY_CRON"
NIGHTLY_TIMEZONE = "PIPELINES_NIGHTLY_TIMEZONE"
NIGHTLY_LOOKBACK_DAYS = "PIPELINES_NIGHTLY_LOOKBACK_DAYS"
ALERT_WEBHOOK_URL = "PIPELINES_ALERT_WEBHOOK_URL"

DEFAULT_DATA_DIR = ".data"

# Resource field -> environment variable, per resource.
MODELARTS_FIELDS = {
    "endpoint": MODELARTS_ENDPOINT,
    "project_id": MODELARTS_PROJECT_ID,
    "token": MODELARTS_TOKEN,
    "offset_mode": MODELARTS_OFFSET_MODE,
    "workers": MODELARTS_WORKERS,
    "page_limit": MODELARTS_PAGE_LIMIT,
    "max_requests_per_s": MODELARTS_MAX_REQUESTS_PER_S,
    "retry_budget": MODELARTS_RETRY_BUDGET,
    "max_retries": MODELARTS_MAX_RETRIES,
    "split_threshold": MODELARTS_SPLIT_THRESHOLD,
    "lookback_hours": MODELARTS_LOOKBACK_HOURS,
    "ca_bundle": MODELARTS_CA_BUNDLE,
    "iam_endpoint": IAM_ENDPOINT,
    "username": IAM_USERNAME,
    "password": IAM_PASSWORD,
    "domain": IAM_DOMAIN,
    "region": IAM_REGION,
}
ANALYTICS_DATABASE_URL = "ANALYTICS_DATABASE_URL"
WAREHOUSE_FIELDS = {
    "database_url": DATABASE_URL,
    "analytics_database_url": ANALYTICS_DATABASE_URL,
    "data_dir": DATA_DIR,
}
ALERT_FIELDS = {"webhook_url": ALERT_WEBHOOK_URL}
# Bound whether set or not: a run without them fails naming the missing variable.
REQUIRED = frozenset({MODELARTS_ENDPOINT, MODELARTS_PROJECT_ID})
INTEGERS = frozenset(
    {
        MODELARTS_WORKERS,
        MODELARTS_PAGE_LIMIT,
        MODELARTS_MAX_REQUESTS_PER_S,
        MODELARTS_RETRY_BUDGET,
        MODELARTS_MAX_RETRIES,
        MODELARTS_SPLIT_THRESHOLD,
        MODELARTS_LOOKBACK_HOURS,
    }
)


@dataclass(frozen=True)
class Configured:
    """Which parts of the system the environment points at real services."""

    api: bool
    database: bool


@dataclass(frozen=True)
class NightlySchedule:
    """When the nightly run fires, and how many days before yesterday it re-runs for late data."""

    cron: str = "30 0 * * *"
    timezone: str = "UTC"
    lookback_days: int = 2


def nightly_schedule() -> NightlySchedule:
    """Read when the Definitions are built: Dagster needs a schedule's cron at load time."""
    default = NightlySchedule()
    return NightlySchedule(
        cron=os.environ.get(NIGHTLY_CRON) or default.cron,
        timezone=os.environ.get(NIGHTLY_TIMEZONE) or default.timezone,
        lookback_days=int(os.environ.get(NIGHTLY_LOOKBACK_DAYS) or default.lookback_days),
    )


def configured() -> Configured:
    return Configured(
        api=bool(os.environ.get(MODELARTS_ENDPOINT)),
        database=bool(os.environ.get(DATABASE_URL)),
    )


def env_bound(fields: dict[str, str]) -> dict[str, Any]:
    """`EnvVar`s for required fields and for optional ones whose variable is set.

    An optional field whose variable is unset keeps the resource's default: `EnvVar` would fail
    the run for a variable that is legitimately absent (e.g. MODELARTS_TOKEN under IAM auth).
    """
    from dagster import EnvVar

    return {
        field: EnvVar.int(var) if var in INTEGERS else EnvVar(var)
        for field, var in fields.items()
        if var in REQUIRED or os.environ.get(var)
    }
