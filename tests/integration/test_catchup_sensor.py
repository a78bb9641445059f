"""The catch-up sensor evaluated by Dagster, on a real instance (the project's dagster.yaml: its
pool limit) and a real warehouse: after 1, 5 and 40 nights of downtime it requests exactly the
missing days inside the horizon, in as few runs as the pool allows; a day that fails for good is
retried alone, given up after MAX_ATTEMPTS real failed runs, alerted once and shown in `status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SensorResult,
    build_sensor_context,
)
from sqlalchemy import Engine, text

from pipelines import catchup, run_tags
from pipelines.assets.catchup import catch_up_missed_days
from pipelines.assets.schedules import nightly_days
from pipelines.assets.sensors import AlertWebhookResource
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.resources import WarehouseResource
from tests import REPO
from tests.integration.conftest import WebhookRecorder

pytestmark = pytest.mark.integration

RETENTION = 30


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    """An instance on the project's dagster.yaml (pools: default_limit 2) in DAGSTER_HOME."""
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.from_config(str(tmp_path)) as inst:
        yield inst


@pytest.fixture
def tick(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The nightly cron's latest tick, two hours ago (past the sensor's grace), and the
    30-day retention."""
    latest = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    monkeypatch.setenv("PIPELINES_NIGHTLY_CRON", f"{latest.minute} {latest.hour} * * *")
    monkeypatch.setenv("PIPELINES_NIGHTLY_LOOKBACK_DAYS", "2")
    monkeypatch.setenv("MODELARTS_RETENTION_DAYS", str(RETENTION))
    return latest


def mark_loaded(engine: Engine, first: date, last: date) -> None:
    """The audit rows of successful loads of first..last (what a load leaves; the sensor reads
    no more)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into load_batches (run_id, partition_key, window_start_ms,"
                " window_end_ms, status, finished_at)"
                " select 'earlier', d::date::text,"
                " extract(epoch from d)::bigint * 1000,"
                " extract(epoch from d + interval '1 day')::bigint * 1000, 'succeeded', now()"
                " from generate_series(cast(:first as timestamp), cast(:last as timestamp),"
                " interval '1 day') as d"
            ),
            {"first": first.isoformat(), "last": last.isoformat()},
        )


def evaluate(
    instance: DagsterInstance, database_url: str, alert_webhook: str, cursor: str | None = None
) -> SensorResult:
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "warehouse": WarehouseResource(database_url=database_url),
            "alerts": AlertWebhookResource(webhook_url=alert_webhook),
        },
    )
    result = catch_up_missed_days(context)
    assert isinstance(result, SensorResult)
    return result


def ranges(result: SensorResult) -> list[tuple[str, str]]:
    return [
        (r.tags[run_tags.PARTITION_RANGE_START], r.tags[run_tags.PARTITION_RANGE_END])
        for r in result.run_requests or []
        if isinstance(r, RunRequest)
    ]


def queue_run(instance: DagsterInstance, first: date, last: date, trigger: str) -> None:
    """A run of the nightly job for first..last created, not started yet (in flight)."""
    instance.create_run_for_job(
        build_definitions().resolve_job_def("nightly"),
        tags={
            run_tags.PARTITION_RANGE_START: first.isoformat(),
            run_tags.PARTITION_RANGE_END: last.isoformat(),
            run_tags.TRIGGER: trigger,
        },
        status=DagsterRunStatus.NOT_STARTED,
    )


@pytest.mark.parametrize("nights", [1, 5, 40])
def test_after_downtime_every_missing_day_in_the_horizon_is_requested_once(
    nights: int,
    engine: Engine,
    database_url: str,
    instance: DagsterInstance,
    tick: datetime,
    alert_webhook: str,
) -> None:
    today = datetime.now(UTC).date()
    first_recoverable = (datetime.now(UTC) - timedelta(days=RETENTION)).date()
    nightly_first, nightly_last = nightly_days(tick, 2)
    # loaded up to the night the daemon stopped, from well before the horizon
    mark_loaded(engine, today - timedelta(days=60), nightly_last - timedelta(days=nights))
    # back up, the scheduler launched the latest missed tick's run (and only that one)
    queue_run(instance, nightly_first, nightly_last, "nightly")

    result = evaluate(instance, database_url, alert_webhook)

    missing_first = max(nightly_last - timedelta(days=nights - 1), first_recoverable)
    expected = (
        [(missing_first.isoformat(), (nightly_first - timedelta(days=1)).isoformat())]
        if missing_first < nightly_first
        else []
    )
    assert ranges(result) == expected
    for request in result.run_requests or []:
        assert isinstance(request, RunRequest)
        assert request.run_key == f"catchup-{expected[0][0]}-{expected[0][1]}-attempt1"
        assert request.tags[run_tags.TRIGGER] == catchup.TRIGGER
    # what the daemon does with the request: the run queues; the next evaluation asks nothing
    for first, last in expected:
        queue_run(instance, date.fromisoformat(first), date.fromisoformat(last), "catchup")
    assert ranges(evaluate(instance, database_url, alert_webhook, result.cursor)) == []


def test_a_day_that_fails_for_good_is_retried_alone_then_given_up_and_alerted_once(
    engine: Engine,
    database_url: str,
    instance: DagsterInstance,
    tick: datetime,
    alert_webhook: str,
    pipeline_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    today = datetime.now(UTC).date()
    failing = today - timedelta(days=10)
    mark_loaded(engine, today - timedelta(days=60), failing - timedelta(days=1))
    mark_loaded(engine, failing + timedelta(days=1), today - timedelta(days=1))
    # A project the API does not know: every run fails at once, as a day that cannot load would
    monkeypatch.setenv("MODELARTS_PROJECT_ID", "no-such-project")
    monkeypatch.setenv("MODELARTS_TOKEN", "static-token-value")
    job = build_definitions().resolve_job_def("nightly")
    cursor = None
    for attempt in range(1, catchup.MAX_ATTEMPTS + 1):
        result = evaluate(instance, database_url, alert_webhook, cursor)
        cursor = result.cursor
        assert ranges(result) == [(failing.isoformat(), failing.isoformat())]
        request = (result.run_requests or [])[0]
        assert isinstance(request, RunRequest)
        assert request.run_key == f"catchup-{failing}-{failing}-attempt{attempt}"
        run = job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
        assert not run.success
    assert WebhookRecorder.received == []

    given_up = evaluate(instance, database_url, alert_webhook, cursor)
    assert ranges(given_up) == []
    assert [p["event"] for p in WebhookRecorder.received] == ["days_given_up"]
    assert WebhookRecorder.received[0]["days"] == [failing.isoformat()]
    assert "secret" not in json.dumps(WebhookRecorder.received)
    again = evaluate(instance, database_url, alert_webhook, given_up.cursor)
    assert ranges(again) == [] and len(WebhookRecorder.received) == 1  # alerted once

    capsys.readouterr()
    assert main(["status", "--start", str(failing - timedelta(days=1)), "--end", str(failing)]) == 0
    rows = {line[:10]: line for line in capsys.readouterr().out.splitlines()}
    assert rows[failing.isoformat()][12:27].strip() == "given up"
    assert rows[(failing - timedelta(days=1)).isoformat()][12:27].strip() == "loaded"


def test_a_day_about_to_leave_the_horizon_is_warned_of_once_its_first_run_failed(
    engine: Engine,
    database_url: str,
    instance: DagsterInstance,
    tick: datetime,
    alert_webhook: str,
) -> None:
    today = datetime.now(UTC).date()
    first_recoverable = (datetime.now(UTC) - timedelta(days=RETENTION)).date()
    mark_loaded(engine, first_recoverable + timedelta(days=1), today - timedelta(days=1))
    day = (first_recoverable.isoformat(), first_recoverable.isoformat())
    first = evaluate(instance, database_url, alert_webhook)
    # its first run is requested: no warning yet
    assert ranges(first) == [day]
    assert WebhookRecorder.received == []
    # that run ended without the day: it is asked for again, and the webhook hears of the risk
    queue_run(instance, first_recoverable, first_recoverable, "catchup")
    for run in instance.get_runs():
        instance.report_run_failed(run)
    second = evaluate(instance, database_url, alert_webhook, first.cursor)
    assert ranges(second) == [day]
    assert [p["event"] for p in WebhookRecorder.received] == ["days_leaving_retention_horizon"]
    assert WebhookRecorder.received[0]["days"] == [first_recoverable.isoformat()]
    evaluate(instance, database_url, alert_webhook, second.cursor)
    assert len(WebhookRecorder.received) == 1  # once
