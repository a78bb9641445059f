"""Alerts: every failed run is logged and, when a webhook is configured, posted to it as JSON."""

from __future__ import annotations

import logging
from typing import Any

import requests
from dagster import (
    ConfigurableResource,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)
from pydantic import Field

from pipelines import run_tags

log = logging.getLogger(__name__)


class AlertWebhookResource(ConfigurableResource):
    """Where failure alerts go: PIPELINES_ALERT_WEBHOOK_URL (a secret: it often embeds a token)."""

    webhook_url: str | None = Field(default=None, repr=False)
    timeout_s: float = 10.0

    def post(self, payload: dict[str, Any]) -> bool:
        """POST the payload; True when delivered. Never raises and never logs the URL."""
        if not self.webhook_url:
            return False
        try:
            response = requests.post(self.webhook_url, json=payload, timeout=self.timeout_s)
        except requests.RequestException as exc:
            log.warning("alert webhook unreachable: %s", type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("alert webhook answered HTTP %s", response.status_code)
            return False
        return True


def failure_payload(context: RunFailureSensorContext) -> dict[str, Any]:
    run = context.dagster_run
    tags = run.tags
    return {
        "event": "run_failed",
        "run_id": run.run_id,
        "job_name": run.job_name,
        "partition": tags.get(run_tags.PARTITION),
        "partition_range": [
            tags.get(run_tags.PARTITION_RANGE_START),
            tags.get(run_tags.PARTITION_RANGE_END),
        ],
        "trigger": tags.get(run_tags.TRIGGER) or tags.get(run_tags.SCHEDULE_NAME),
        "error": (context.failure_event.message or "")[:2000],
    }


@run_failure_sensor(
    name="alert_on_run_failure",
    default_status=DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
)
def alert_on_run_failure(context: RunFailureSensorContext, alerts: AlertWebhookResource) -> None:
    payload = failure_payload(context)
    context.log.error(
        "run %s of %s failed: %s", payload["run_id"], payload["job_name"], payload["error"][:300]
    )
    if alerts.post(payload):
        context.log.info("failure alert posted to the webhook")
