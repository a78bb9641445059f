"""Operating the pipeline: a nightly range run lands its days; failures reach the webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, materialize

from pipelines.assets.events import service_events, services
from pipelines.assets.sensors import AlertWebhookResource, alert_on_run_failure
from pipelines.definitions import build_definitions, build_resources
from pipelines.simulator.process import SimulatorInfo
from tests.integration.conftest import expected_events, simulator_days, stored_events

pytestmark = pytest.mark.integration


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_the_nightly_job_runs_a_partition_range_in_one_run(
    simulator: SimulatorInfo, pipeline_env: dict[str, str]
) -> None:
    days = simulator_days(simulator)
    job = build_definitions().resolve_job_def("nightly")
    result = job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
        },
    )
    assert result.success
    from pipelines.assets.partitions import daily_partitions

    start = daily_partitions.time_window_for_partition_key(days[0]).start
    end = daily_partitions.time_window_for_partition_key(days[-1]).end
    expected = expected_events(
        simulator, int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    )
    assert stored_events(pipeline_env["DATABASE_URL"]) == expected


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Webhook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Webhook.received.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token"
    server.shutdown()


def test_a_failed_run_is_posted_to_the_webhook(
    pipeline_env: dict[str, str], webhook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A project the API does not know: a non-retryable 404 fails the run at once.
    monkeypatch.setenv("MODELARTS_PROJECT_ID", "no-such-project")
    monkeypatch.setenv("MODELARTS_TOKEN", "static-token-value")
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [services, service_events],
        selection=["service_events"],
        partition_key="2026-11-18",
        instance=instance,
        resources=build_resources(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alerts": AlertWebhookResource(webhook_url=webhook)},
    ).for_run_failure()
    alert_on_run_failure(context)
    assert len(_Webhook.received) == 1
    payload = _Webhook.received[0]
    assert payload["event"] == "run_failed"
    assert payload["run_id"] == result.run_id
    assert payload["partition"] == "2026-11-18"
    dumped = json.dumps(payload)
    assert "static-token-value" not in dumped and "secret-token" not in dumped
