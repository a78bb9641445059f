"""The nightly job: yesterday's partition plus a lookback for late events, then everything
downstream of `service_events` (the marts) for the same days, in one run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetSelection,
    Backoff,
    DefaultScheduleStatus,
    Jitter,
    RetryPolicy,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from pipelines import run_tags
from pipelines.assets.partitions import PARTITIONS_START
from pipelines.settings import NightlySchedule

# Steps are idempotent (each day loads in its own transaction), so a retry is always safe.
STEP_RETRY = RetryPolicy(
    max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)

nightly_job = define_asset_job(
    name="nightly",
    # partitioned by the selected assets' daily_partitions (dagster infers it; the parameter
    # is deprecated)
    selection=AssetSelection.assets("service_events").downstream(),
    op_retry_policy=STEP_RETRY,
    description="service_events and its downstream marts for a range of UTC days.",
)


def nightly_days(tick: datetime, lookback_days: int) -> tuple[date, date]:
    """First and last UTC day a tick at `tick` covers: the last complete UTC day, and the
    `lookback_days` before it (late events of those days land, and their marts follow)."""
    last = tick.astimezone(UTC).date() - timedelta(days=1)
    first = max(last - timedelta(days=lookback_days), PARTITIONS_START)
    return first, last


def build_nightly_schedule(config: NightlySchedule) -> ScheduleDefinition:
    @schedule(
        name="nightly_schedule",
        job=nightly_job,
        cron_schedule=config.cron,
        execution_timezone=config.timezone,
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def nightly_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        tick = context.scheduled_execution_time or datetime.now(UTC)
        first, last = nightly_days(tick, config.lookback_days)
        return RunRequest(
            run_key=f"nightly-{last.isoformat()}",
            tags={
                run_tags.PARTITION_RANGE_START: first.isoformat(),
                run_tags.PARTITION_RANGE_END: last.isoformat(),
                run_tags.TRIGGER: "nightly",
            },
        )

    return nightly_schedule
