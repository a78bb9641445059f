"""Every environment variable the pipeline reads, in one place.

Resources bind to these through `dagster.EnvVar`, so values are read when a run starts, not when
the code is imported, and secrets never show in the Dagster UI.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

DATABASE_URL = "DATABASE_URL"
DATA_DIR = "PIPELINES_DATA_DIR"
MODELARTS_ENDPOINT = "MODELARTS_ENDPOINT"
MODELARTS_PROJECT_ID = "MODELARTS_PROJECT_ID"
MODELARTS_TOKEN = "MODELARTS_TOKEN"
MODELARTS_OFFSET_MODE = "MODELARTS_OFFSET_MODE"
MODELARTS_WORKERS = "MODELARTS_WORKERS"
# The most workers a run scales up to while answers are slow and nothing throttles.
MODELARTS_MAX_WORKERS = "MODELARTS_MAX_WORKERS"
MODELARTS_PAGE_LIMIT = "MODELARTS_PAGE_LIMIT"
MODELARTS_MAX_REQUESTS_PER_S = "MODELARTS_MAX_REQUESTS_PER_S"
MODELARTS_RETRY_BUDGET = "MODELARTS_RETRY_BUDGET"
MODELARTS_MAX_RETRIES = "MODELARTS_MAX_RETRIES"
MODELARTS_SPLIT_THRESHOLD = "MODELARTS_SPLIT_THRESHOLD"
MODELARTS_LOOKBACK_HOURS = "MODELARTS_LOOKBACK_HOURS"
MODELARTS_CA_BUNDLE = "MODELARTS_CA_BUNDLE"
# Which API generations a run lists and loads: auto (both), v1 (old-version services) or v2.
MODELARTS_API = "MODELARTS_API"
# How long a run may go on being throttled before it fails (source/retrying.py)
MODELARTS_RUN_TIME_BUDGET_S = "MODELARTS_RUN_TIME_BUDGET_S"
# How many days the API keeps service events (API.md: "about one month"): older days are gone.
MODELARTS_RETENTION_DAYS = "MODELARTS_RETENTION_DAYS"
IAM_ENDPOINT = "HUAWEICLOUD_IAM_ENDPOINT"
IAM_USERNAME = "HUAWEICLOUD_USERNAME"
IAM_PASSWORD = "HUAWEICLOUD_PASSWORD"
IAM_DOMAIN = "HUAWEICLOUD_DOMAIN"
IAM_REGION = "HUAWEICLOUD_REGION"
# AK/SK credentials, with the Huawei Cloud SDK's names (see pipelines/source/connect.py)
SDK_AK = "HUAWEICLOUD_SDK_AK"
SDK_SK = "HUAWEICLOUD_SDK_SK"
SDK_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
SDK_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
SDK_CREDENTIALS_FILE = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
METADATA_ENDPOINT = "HUAWEICLOUD_METADATA_ENDPOINT"
# Region endpoints beyond the vendor's table, with the SDK's names (pipelines/source/regions.py)
SDK_REGION_PREFIX = "HUAWEICLOUD_SDK_REGION"
SDK_REGIONS_FILE = "HUAWEICLOUD_SDK_REGIONS_FILE"

NIGHTLY_CRON = "PIPELINES_NIGHTLY_CRON"
NIGHTLY_TIMEZONE = "PIPELINES_NIGHTLY_TIMEZONE"
NIGHTLY_LOOKBACK_DAYS = "PIPELINES_NIGHTLY_LOOKBACK_DAYS"
ALERT_WEBHOOK_URL = "PIPELINES_ALERT_WEBHOOK_URL"
PARTITIONS_START = "PIPELINES_PARTITIONS_START"
WAIT_TIMEOUT_S = "PIPELINES_WAIT_TIMEOUT_S"
EMBEDDED = "PIPELINES_EMBEDDED"
MIN_RULE_COVERAGE = "PIPELINES_MIN_RULE_COVERAGE"

DEFAULT_DATA_DIR = ".data"
# With no PIPELINES_PARTITIONS_START, the daily partitions begin this many days before today.
DEFAULT_PARTITION_DAYS = 30
DEFAULT_WAIT_TIMEOUT_S = 3600
DEFAULT_RETENTION_DAYS = 30
# Below this share of a day's events (or attempts) explained by the event text rules, the
# coverage check warns.
DEFAULT_MIN_RULE_COVERAGE = 0.99

# Resource field -> environment variable, per resource.
MODELARTS_FIELDS = {
    "endpoint": MODELARTS_ENDPOINT,
    "project_id": MODELARTS_PROJECT_ID,
    "token": MODELARTS_TOKEN,
    "offset_mode": MODELARTS_OFFSET_MODE,
    "workers": MODELARTS_WORKERS,
    "max_workers": MODELARTS_MAX_WORKERS,
    "page_limit": MODELARTS_PAGE_LIMIT,
    "max_requests_per_s": MODELARTS_MAX_REQUESTS_PER_S,
    "retry_budget": MODELARTS_RETRY_BUDGET,
    "max_retries": MODELARTS_MAX_RETRIES,
    "split_threshold": MODELARTS_SPLIT_THRESHOLD,
    "lookback_hours": MODELARTS_LOOKBACK_HOURS,
    "ca_bundle": MODELARTS_CA_BUNDLE,
    "api": MODELARTS_API,
    "run_time_budget_s": MODELARTS_RUN_TIME_BUDGET_S,
    "iam_endpoint": IAM_ENDPOINT,
    "username": IAM_USERNAME,
    "password": IAM_PASSWORD,
    "domain": IAM_DOMAIN,
    "region": IAM_REGION,
    "access_key": SDK_AK,
    "secret_key": SDK_SK,
    "security_token": SDK_SECURITY_TOKEN,
    "sdk_project_id": SDK_PROJECT_ID,
    "credentials_file": SDK_CREDENTIALS_FILE,
    "metadata_endpoint": METADATA_ENDPOINT,
}
# Values never shown: not in logs, errors, metadata or reprs.
SECRETS = (IAM_PASSWORD, MODELARTS_TOKEN, SDK_SK, SDK_SECURITY_TOKEN)
ANALYTICS_DATABASE_URL = "ANALYTICS_DATABASE_URL"
WAREHOUSE_FIELDS = {
    "database_url": DATABASE_URL,
    "analytics_database_url": ANALYTICS_DATABASE_URL,
    "data_dir": DATA_DIR,
}
ALERT_FIELDS = {"webhook_url": ALERT_WEBHOOK_URL}
# Bound whether set or not: a run without them fails naming the missing variable. (The API's
# endpoint and project id may come from HUAWEICLOUD_REGION and the SDK's settings instead: the
# ModelArts resource checks them when a run starts.)
REQUIRED: frozenset[str] = frozenset()


# Every integer variable -> (lowest, highest) accepted value; None: no bound.
INTEGER_RANGES: dict[str, tuple[int, int | None]] = {
    MODELARTS_WORKERS: (1, 64),
    MODELARTS_MAX_WORKERS: (1, 64),
    MODELARTS_PAGE_LIMIT: (10, 1000),  # below 10 a record-offset API could go unnoticed
    MODELARTS_MAX_REQUESTS_PER_S: (0, None),
    MODELARTS_RETRY_BUDGET: (0, None),
    MODELARTS_MAX_RETRIES: (0, 20),
    MODELARTS_SPLIT_THRESHOLD: (0, None),
    MODELARTS_LOOKBACK_HOURS: (0, 24 * 31),
    MODELARTS_RUN_TIME_BUDGET_S: (60, 7 * 86_400),
    NIGHTLY_LOOKBACK_DAYS: (0, 366),
    WAIT_TIMEOUT_S: (1, 2_000_000),  # Postgres' lock_timeout stops at 2^31 - 1 ms
    MODELARTS_RETENTION_DAYS: (1, 36_500),  # the tests' fixed 2024 days need a long horizon
}
INTEGERS = frozenset(INTEGER_RANGES)
OFFSET_MODES = ("page", "record")
API_GENERATIONS = ("auto", "v1", "v2")


class ConfigError(ValueError):
    """A setting the pipeline cannot run with; the message names the variable, never a secret."""


def check_integer(var: str, value: object) -> int:
    """`value` of variable `var` as an integer within its range, else ConfigError."""
    low, high = INTEGER_RANGES[var]
    bounds = f"{low}..{high}" if high is not None else f">= {low}"
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{var} must be an integer {bounds}, not {value!r}") from None
    if number < low or (high is not None and number > high):
        raise ConfigError(f"{var} must be {bounds}, not {number}")
    return number


def check_offset_mode(value: str) -> str:
    """`value` if it is an offset mode MODELARTS_OFFSET_MODE may name, else ConfigError."""
    if value not in OFFSET_MODES:
        raise ConfigError(f"{MODELARTS_OFFSET_MODE} must be 'page' or 'record', not {value!r}")
    return value


def _integer(var: str, default: int) -> int:
    raw = os.environ.get(var)
    return default if not raw else check_integer(var, raw)


def wait_timeout_s() -> int:
    """How long a run waits for another run (a pool slot, a day's load lock) before failing."""
    return _integer(WAIT_TIMEOUT_S, DEFAULT_WAIT_TIMEOUT_S)


def retention_days() -> int:
    """MODELARTS_RETENTION_DAYS: the days the API keeps events (pipelines/horizon.py)."""
    return _integer(MODELARTS_RETENTION_DAYS, DEFAULT_RETENTION_DAYS)


def min_rule_coverage() -> float:
    """PIPELINES_MIN_RULE_COVERAGE: the share 0..1 under which the rule coverage check warns."""
    raw = os.environ.get(MIN_RULE_COVERAGE)
    if not raw:
        return DEFAULT_MIN_RULE_COVERAGE
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{MIN_RULE_COVERAGE} must be a share 0..1, not {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{MIN_RULE_COVERAGE} must be a share 0..1, not {value}")
    return value


def max_unclassified_share() -> float:
    """The share of a day's events left unexplained by the rules above which checks warn."""
    return round(1.0 - min_rule_coverage(), 6)


def partitions_start(today: date | None = None) -> date:
    """The first day of the daily partitions: PIPELINES_PARTITIONS_START, else 30 days ago.

    Read when the Definitions are built (Dagster needs it then). Deployments should set it: the
    default moves with the calendar.
    """
    today = today or datetime.now(UTC).date()
    raw = os.environ.get(PARTITIONS_START)
    if not raw:
        return today - timedelta(days=DEFAULT_PARTITION_DAYS)
    try:
        start = date.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigError(f"{PARTITIONS_START} must be a date YYYY-MM-DD, not {raw!r}") from None
    if start >= today:
        raise ConfigError(f"{PARTITIONS_START} ({start}) must be before today ({today}, UTC)")
    return start


# The variables this check reads: the pipeline's prefixes, its database URLs and Dagster's.
_CHECKED_PREFIXES = ("MODELARTS_", "HUAWEICLOUD_", "PIPELINES_")
_CHECKED_NAMES = (DATABASE_URL, ANALYTICS_DATABASE_URL, "DAGSTER_PG_URL")
# A password may hold any character (its mistake shows as a refused login instead).
_ANY_TEXT = frozenset({IAM_PASSWORD})
# Identifiers, keys and URLs: never a space (a cron expression, a path or an IAM user name may
# hold one).
_NO_SPACE = frozenset(
    {
        IAM_REGION,
        IAM_DOMAIN,
        MODELARTS_PROJECT_ID,
        MODELARTS_TOKEN,
        MODELARTS_OFFSET_MODE,
        MODELARTS_API,
        SDK_AK,
        SDK_SK,
        SDK_SECURITY_TOKEN,
        SDK_PROJECT_ID,
        MODELARTS_ENDPOINT,
        IAM_ENDPOINT,
        METADATA_ENDPOINT,
        ALERT_WEBHOOK_URL,
        PARTITIONS_START,
        DATABASE_URL,
        ANALYTICS_DATABASE_URL,
        "DAGSTER_PG_URL",
        *INTEGER_RANGES,
    }
)
_INLINE_COMMENT = re.compile(r"\s#")
# Values an error may quote: neither a secret nor a URL that may carry one (databases, webhook).
_SHOWN = frozenset(
    {
        IAM_REGION,
        MODELARTS_PROJECT_ID,
        SDK_PROJECT_ID,
        MODELARTS_OFFSET_MODE,
        MODELARTS_API,
        MODELARTS_ENDPOINT,
        IAM_ENDPOINT,
        METADATA_ENDPOINT,
        PARTITIONS_START,
        NIGHTLY_CRON,
        NIGHTLY_TIMEZONE,
        *INTEGER_RANGES,
    }
)


def check_value_text(var: str, value: str) -> None:
    """ConfigError when `value` carries what an env file's author meant as a comment or layout.

    systemd's EnvironmentFile= (and `docker --env-file`, and Kubernetes' env) keep everything
    after `=`: `HUAWEICLOUD_REGION=cn-north-4   # gives the endpoints` is that whole text, and it
    would reach the API as a region. A secret's value is never shown.
    """
    if var in _ANY_TEXT:
        return
    shown = repr(value) if var in _SHOWN else "its value not shown"
    if _INLINE_COMMENT.search(value):
        raise ConfigError(
            f"{var} holds an inline comment ({shown}): an env file keeps everything after `=` "
            "in the value; put comments on lines of their own"
        )
    if var in _NO_SPACE and any(char.isspace() for char in value):
        raise ConfigError(f"{var} must not contain spaces ({shown})")


def check_api(value: str) -> str:
    """`value` if MODELARTS_API may name it (auto|v1|v2), else ConfigError."""
    if value not in API_GENERATIONS:
        raise ConfigError(f"{MODELARTS_API} must be 'auto', 'v1' or 'v2', not {value!r}")
    return value


def api_generations(value: str) -> tuple[str, ...]:
    """The generations a run lists and loads under MODELARTS_API=`value`."""
    return ("v1", "v2") if check_api(value) == "auto" else (value,)


def validate() -> None:
    """Check every variable that is set, before anything runs; raises ConfigError."""
    env = os.environ
    for var in sorted(env):
        if var.startswith(_CHECKED_PREFIXES) or var in _CHECKED_NAMES:
            check_value_text(var, env[var])
    for var in INTEGER_RANGES:
        if env.get(var):
            check_integer(var, env[var])
    if env.get(MODELARTS_OFFSET_MODE):
        check_offset_mode(env[MODELARTS_OFFSET_MODE])
    if env.get(MODELARTS_API):
        check_api(env[MODELARTS_API])
    if env.get(MIN_RULE_COVERAGE):
        min_rule_coverage()
    for var in (MODELARTS_ENDPOINT, IAM_ENDPOINT, METADATA_ENDPOINT, ALERT_WEBHOOK_URL):
        if env.get(var):
            parts = urlsplit(env[var])
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{var} must be an http(s):// URL")
    for var in (DATABASE_URL, ANALYTICS_DATABASE_URL):
        scheme = urlsplit(env.get(var, "")).scheme.split("+")[0]
        if env.get(var) and scheme not in ("postgres", "postgresql"):
            raise ConfigError(f"{var} must be a postgresql:// URL")
    if env.get(NIGHTLY_TIMEZONE):
        try:
            zoneinfo.ZoneInfo(env[NIGHTLY_TIMEZONE])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{NIGHTLY_TIMEZONE} must be an IANA time zone, not {env[NIGHTLY_TIMEZONE]!r}"
            ) from None
    if env.get(NIGHTLY_CRON):
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(env[NIGHTLY_CRON]):
            raise ConfigError(
                f"{NIGHTLY_CRON} must be a cron expression, not {env[NIGHTLY_CRON]!r}"
            )
    partitions_start()
    if env.get(IAM_REGION) and not env.get(MODELARTS_ENDPOINT):
        region_endpoint("modelarts", env[IAM_REGION])  # an unknown region: one line, now


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
        lookback_days=_integer(NIGHTLY_LOOKBACK_DAYS, default.lookback_days),
    )


def region_endpoint(service: str, region: str) -> str:
    """The endpoint of a Huawei Cloud service ('modelarts', 'iam') in a region: the SDK's
    override variable, its regions file, or the vendor's table (ConfigError if none knows it)."""
    from pipelines.source.regions import region_endpoint as resolve

    return resolve(service, region)


def configured() -> Configured:
    """The API counts as configured by its endpoint or by a region alone (its endpoints are
    then derived, see region_endpoint)."""
    return Configured(
        api=bool(os.environ.get(MODELARTS_ENDPOINT) or os.environ.get(IAM_REGION)),
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
