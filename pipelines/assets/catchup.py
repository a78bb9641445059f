"""The catch-up sensor: the days the nightly schedule missed (a stopped daemon, a failed night, a
deployment that started late) are requested by the daemon itself, within the API's retention
horizon; the alert webhook hears of a day given up and of a day about to fall out of the horizon.

Dagster's scheduler launches only the latest missed tick of a schedule, and the nightly tick
covers only yesterday and its lookback: the older days are this sensor's (pipelines/catchup.py
plans which, and how many runs at once)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._utils.schedules import reverse_cron_string_iterator

from pipelines import catchup, settings
from pipelines.assets.events import API_POOL
from pipelines.assets.partitions import PARTITIONS_START
from pipelines.assets.schedules import nightly_days, nightly_job
from pipelines.assets.sensors import AlertWebhookResource
from pipelines.horizon import Horizon, current_horizon, describe_days
from pipelines.resources import WarehouseResource

# Seconds between evaluations: each one reads the nightly job's runs and one query of the
# warehouse; a missed day waits at most this long for its request.
INTERVAL_S = 60
_ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def api_slots(instance: DagsterInstance) -> int:
    """How many runs may call the API at once: the limit of its pool (dagster.yaml), at least 1."""
    limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    if API_POOL in limits:
        return max(1, limits[API_POOL])
    return max(1, instance.get_concurrency_config().pool_config.default_pool_limit or 1)


def nightly_run_days(instance: DagsterInstance, since: date) -> catchup.RunDays:
    """The days of the nightly job's runs created since `since` (none cover an earlier day)."""
    runs = instance.get_runs(
        RunsFilter(
            job_name=nightly_job.name,
            created_after=datetime.combine(since, datetime.min.time(), tzinfo=UTC),
        )
    )
    return catchup.tally_runs((run.tags, run.status not in _ENDED) for run in runs)


def latest_nightly_tick(now: datetime) -> tuple[datetime, tuple[date, date]]:
    """The latest tick of the nightly cron at or before `now`, and the days it covers."""
    config = settings.nightly_schedule()
    tick = next(reverse_cron_string_iterator(now.timestamp(), config.cron, config.timezone))
    return tick, nightly_days(tick, config.lookback_days)


def _cursor(raw: str | None, horizon: Horizon) -> dict[str, list[str]]:
    """Days already warned of; days beyond the horizon are forgotten."""
    try:
        loaded = json.loads(raw) if raw else {}
    except ValueError:
        loaded = {}
    oldest = horizon.first_recoverable_day.isoformat()
    return {"warned": [d for d in loaded.get("warned", []) if d >= oldest]}


def _alert(
    context: SensorEvaluationContext,
    alerts: AlertWebhookResource,
    payload: dict[str, Any],
) -> bool:
    """Log and post an alert; True when it need not be sent again (delivered, or no webhook)."""
    context.log.warning("%s: %s", payload["event"], payload["message"])
    return alerts.post(payload) or not alerts.webhook_url


def _leaving(states: Mapping[date, str], horizon: Horizon) -> list[date]:
    """Days not loaded yet that fall out of the horizon within catchup.WARN_BEFORE."""
    return [
        day
        for day, state in sorted(states.items())
        if state in ("not loaded", "given up") and horizon.time_left(day) <= catchup.WARN_BEFORE
    ]


@sensor(
    name="catch_up_missed_days",
    job=nightly_job,
    minimum_interval_seconds=INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Requests every day inside the API's retention horizon (MODELARTS_RETENTION_DAYS) that "
        "has no successful load and no run queued or running for it: consecutive days as one "
        "range run, at most as many runs at once as the modelarts_api pool allows; a day a "
        f"run ended without is retried alone, and given up after {catchup.MAX_ATTEMPTS} runs."
    ),
)
def catch_up_missed_days(
    context: SensorEvaluationContext, warehouse: WarehouseResource, alerts: AlertWebhookResource
) -> SensorResult:
    from pipelines.operate import day_states, record_given_up

    now = datetime.now(UTC)
    horizon = current_horizon(now)
    tick, nightly_range = latest_nightly_tick(now)
    scope = catchup.sensor_days(
        horizon.first_recoverable_day, PARTITIONS_START, tick, nightly_range, now
    )
    first = max(horizon.first_recoverable_day, PARTITIONS_START)
    last = now.date() - timedelta(days=1)
    if first > last:
        return SensorResult(skip_reason="no day inside the retention horizon is complete yet")
    try:
        # this process's engine, kept between evaluations (warehouse_engine caches it)
        states = day_states(warehouse.get_engine(), first, last, horizon)
    except Exception as exc:  # e.g. a migration pending: the next evaluation tries again
        return SensorResult(skip_reason=f"warehouse not readable: {type(exc).__name__}: {exc}")
    runs = nightly_run_days(context.instance, first)
    missing = [
        day
        for day, state in states.items()
        if state == "not loaded" and scope is not None and scope[0] <= day <= scope[1]
    ]
    plan = catchup.plan_catchup(missing, runs, api_slots(context.instance))

    given_up = plan.given_up
    if given_up:
        # recorded in the warehouse, which `status` and the report read (no Dagster there); a
        # day recorded is `given up`, no longer `not loaded`: alerted once
        try:
            record_given_up(warehouse.get_engine(), given_up, catchup.MAX_ATTEMPTS)
        except Exception as exc:  # e.g. grants not re-applied: the alert below still goes out
            context.log.error("given-up days not recorded: %s: %s", type(exc).__name__, exc)
        _alert(
            context,
            alerts,
            {
                "event": "days_given_up",
                "days": [d.isoformat() for d in given_up],
                "message": (
                    f"{len(given_up)} day(s) not loaded after {catchup.MAX_ATTEMPTS} runs, no "
                    f"longer requested: {describe_days(given_up)}; "
                    "`modelarts-etl rerun DAY` once the cause is fixed"
                ),
            },
        )
    cursor = _cursor(context.cursor, horizon)
    # a day a first run is loading, or about to, is not worth a warning yet
    first_tries = runs.in_flight | {d for r in plan.requests if r.attempt == 1 for d in r.days()}
    leaving = [
        d
        for d in _leaving(states, horizon)
        if d.isoformat() not in cursor["warned"] and d not in first_tries
    ]
    if leaving and _alert(
        context,
        alerts,
        {
            "event": "days_leaving_retention_horizon",
            "days": [d.isoformat() for d in leaving],
            "lost_at": {d.isoformat(): horizon.lost_at(d).isoformat() for d in leaving},
            "message": (
                f"{len(leaving)} day(s) not loaded yet fall out of the API's "
                f"{horizon.retention_days}-day retention within {catchup.WARN_BEFORE.days} days "
                f"and are then lost for good: {describe_days(leaving)}"
            ),
        },
    ):
        cursor["warned"] += [d.isoformat() for d in leaving]

    requests = [RunRequest(run_key=r.run_key, tags=r.tags()) for r in plan.requests]
    for r in plan.requests:
        context.log.info("requesting %s..%s (attempt %d)", r.first, r.last, r.attempt)
    return SensorResult(
        run_requests=requests,
        cursor=json.dumps(cursor, sort_keys=True),
        skip_reason=None
        if requests
        else (
            f"no day to request: {len(missing)} missing in scope, "
            f"{len(plan.given_up)} given up, {len(plan.waiting)} waiting for a free slot"
        ),
    )
