"""Limits of real regions, end to end over HTTP: the simulator answers a per-credential quota
and a skewed clock as Huawei Cloud's gateway does, and the pipeline lives under both: every
worker slows down together, nothing fails, every event lands exactly once; a clock 20 minutes
off is corrected from the gateway's time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

import psycopg
import pytest
import requests
from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine

from pipelines import settings
from pipelines.assets.events import service_events, services
from pipelines.definitions import build_resources
from pipelines.operate import partition_status
from pipelines.resources import ModelArtsResource
from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.history import HistoryConfig, generate_history
from pipelines.simulator.models import History
from pipelines.simulator.process import SimulatorInfo, running_simulator, simulator_in_thread
from pipelines.source import signer
from pipelines.source.auth import AccessKeyAuth, StaticKeys
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.clock import CLOCK
from pipelines.source.credentials import AccessKey, Secret
from pipelines.source.errors import RetriesExhaustedError
from pipelines.source.extract import ExtractSettings
from pipelines.source.limiter import Quota, RateLimiter, forget_shared_limiters
from pipelines.source.retrying import RetryBudget
from pipelines.source.stats import ExtractionStats
from pipelines.warehouse.database import sqlalchemy_url
from pipelines.windows import TimeWindow, day_start_ms
from tests.integration.conftest import (
    expected_events,
    simulator_days,
    simulator_env,
    stored_events,
)

pytestmark = pytest.mark.integration

TWENTY_MINUTES = 20 * 60.0


@pytest.fixture(autouse=True)
def local_clock() -> Iterator[None]:
    """The process's clock offset and limiters are shared: each test starts and ends on the
    local clock, and leaves no learnt quota behind."""
    CLOCK.reset()
    yield
    CLOCK.reset()
    forget_shared_limiters()


def _signed_get(info: SimulatorInfo, path: str, date: str | None = None) -> requests.Response:
    host = info.url.removeprefix("http://")
    headers = {"Host": host, "Content-Type": "application/json"}
    if date is not None:
        headers[signer.DATE_HEADER] = date
    full = f"/v1/{info.project_id}{path}"
    signed = signer.sign("GET", full, [], headers, info.access_key, info.secret_key)
    return requests.get(info.url + full, headers=signed, timeout=10)


def test_the_gateway_answers_over_quota_as_the_real_one() -> None:
    history = generate_history(HistoryConfig(services=2, days=1, seed=1))
    config = SimulatorConfig(quota_per_window=3, quota_window_s=3600.0)
    with simulator_in_thread(history, config) as info:
        answers = [_signed_get(info, "/services") for _ in range(5)]
        stats = requests.get(f"{info.url}/_sim/stats", timeout=5).json()
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    refused = answers[3]
    assert refused.json() == {
        "error_code": "APIG.0308",
        "error_msg": "The throttling threshold has been reached: policy user over ratelimit,"
        "limit:3,time:3600 second",
    }
    assert "Retry-After" not in refused.headers  # as the real gateway, often
    assert stats["faults"]["quota"] == 2
    for answer in answers:  # every answer carries the gateway's Date
        assert abs(parsedate_to_datetime(answer.headers["Date"]).timestamp() - time.time()) < 5


def test_the_quota_answers_a_minute_and_retry_after_forms() -> None:
    history = generate_history(HistoryConfig(services=1, days=1, seed=1))
    stated = SimulatorConfig(quota_per_window=1)
    with simulator_in_thread(history, stated) as info:
        _signed_get(info, "/services")
        message = _signed_get(info, "/services").json()["error_msg"]
    assert message.endswith("policy user over ratelimit,limit:1,time:1 minute")
    retry_after = SimulatorConfig(quota_per_window=1, quota_answer="retry-after")
    with simulator_in_thread(history, retry_after) as info:
        _signed_get(info, "/services")
        refused = _signed_get(info, "/services")
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "limit:" not in refused.json()["error_msg"]


def test_a_gateway_clock_ahead_refuses_with_its_server_time() -> None:
    history = generate_history(HistoryConfig(services=1, days=1, seed=1))
    with simulator_in_thread(history, SimulatorConfig(clock_offset_s=TWENTY_MINUTES)) as info:
        refused = _signed_get(info, "/services")
    assert refused.status_code == 401
    body = refused.json()
    assert body["error_code"] == "APIGW.0301"
    assert "calc aksk signature fail:signature expired, signature time:" in body["error_msg"]
    server_time = body["error_msg"].rsplit("server time:", 1)[1]
    ahead = signer.parse_sdk_date(server_time)
    assert ahead is not None
    assert abs(ahead.timestamp() - time.time() - TWENTY_MINUTES) < 5
    date = parsedate_to_datetime(refused.headers["Date"]).timestamp()
    assert abs(date - time.time() - TWENTY_MINUTES) < 5


def _client(info: SimulatorInfo, limiter: RateLimiter, budget: RetryBudget) -> ModelArtsClient:
    http = HttpSettings(max_retries=2, backoff_factor_s=0.01, pool_size=5)
    auth = AccessKeyAuth(
        StaticKeys(AccessKey(info.access_key, Secret(info.secret_key))), info.project_id, "keys"
    )
    return ModelArtsClient(
        info.url, info.project_id, auth, build_session(http), http, budget=budget, limiter=limiter
    )


def _extract_all(client: ModelArtsClient, history: History) -> set[tuple[str, int, str, str]]:
    from pipelines.source.extract import extract_window

    ids = [s.service_id for s in client.list_services(limit=10)]
    window = TimeWindow(history.start_ms, history.end_ms)
    settings_ = ExtractSettings(page_limit=100, workers=4)
    return {
        (e.service_id, e.occur_time, e.event_type, e.event_info)
        for page in extract_window(client, ids, window, settings_)
        for e in page.events
    }


@pytest.mark.parametrize("answer", ["stated", "bare", "retry-after"])
def test_every_worker_slows_under_a_quota_and_every_event_lands(answer: str) -> None:
    history = generate_history(HistoryConfig(services=24, days=1, seed=5))
    config = SimulatorConfig(quota_per_window=10, quota_window_s=2.0, quota_answer=answer)
    limiter = RateLimiter(0, quiet_s=2.0, guess_window_s=2.0)  # the simulator's window here
    budget = RetryBudget(0)  # throttling takes nothing from the retry budget
    with simulator_in_thread(history, config) as info:
        client = _client(info, limiter, budget)
        got = _extract_all(client, history)
        truth = expected_events(info)
        stats = requests.get(f"{info.url}/_sim/stats", timeout=5).json()
    assert got == truth
    refused = stats["faults"]["quota"]
    assert client.stats.throttled == refused > 0
    assert client.stats.retries == 0 and budget.spent == 0
    assert limiter.state().throttled == refused
    if answer == "stated":
        # the stated quota is learnt from the first refusals and kept from then on: at most
        # one refusal per worker in flight then (4 workers; the listing ran alone before)
        assert refused <= 5
        assert limiter.state().quota == Quota(10, 2.0)


def _extract_adapting(
    info: SimulatorInfo, history: History, limiter: RateLimiter
) -> tuple[set[tuple[str, int, str, str]], list[tuple[int, str]], ModelArtsClient]:
    """Every event of the history, by 2 workers at the start that may grow to 8."""
    from pipelines.source.extract import ExtractionProgress, extract_window

    client = _client(info, limiter, RetryBudget(0))
    ids = [s.service_id for s in client.list_services(limit=100)]
    window = TimeWindow(history.start_ms, history.end_ms)
    settings_ = ExtractSettings(page_limit=100, workers=2, max_workers=8)
    progress = ExtractionProgress()
    got = {
        (e.service_id, e.occur_time, e.event_type, e.event_info)
        for page in extract_window(client, ids, window, settings_, progress=progress)
        for e in page.events
    }
    return got, progress.workers, client


def test_workers_grow_while_answers_are_slow_and_nothing_throttles() -> None:
    history = generate_history(HistoryConfig(services=40, days=1, seed=5))
    with simulator_in_thread(history, SimulatorConfig(latency_s=0.03)) as info:
        got, workers, client = _extract_adapting(info, history, RateLimiter(0))
        truth = expected_events(info)
    assert got == truth
    assert client.stats.throttled == 0
    assert workers[0] == (2, "start")
    # twice as many after each round of slow answers (nothing throttled), up to the cap of 8
    counts = [n for n, _ in workers]
    assert counts[:3] == [2, 4, 8]
    assert counts[-1] == 8
    assert all(why.startswith("answers take") for _, why in workers[1:])


def test_workers_do_not_grow_past_throttling_and_every_event_lands() -> None:
    history = generate_history(HistoryConfig(services=40, days=1, seed=5))
    # 15 calls per 2 s: less than 2 workers' pace at 30 ms an answer
    config = SimulatorConfig(latency_s=0.03, quota_per_window=15, quota_window_s=2.0)
    limiter = RateLimiter(0, quiet_s=2.0, guess_window_s=2.0)
    with simulator_in_thread(history, config) as info:
        got, workers, client = _extract_adapting(info, history, limiter)
        truth = expected_events(info)
    assert got == truth
    assert client.stats.throttled > 0
    # throttling halved the workers, and they never grew back to where it happened: the
    # limiter keeps every send under the quota it learnt, so more workers would only wait
    first = next(i for i, (_, why) in enumerate(workers) if why == "throttled")
    throttled_at = workers[first - 1][0]
    assert workers[first][0] < throttled_at
    assert max(n for n, _ in workers[first:]) < throttled_at


def test_a_clock_twenty_minutes_behind_the_gateway_is_corrected_once() -> None:
    history = generate_history(HistoryConfig(services=6, days=1, seed=2))
    config = SimulatorConfig(clock_offset_s=TWENTY_MINUTES)
    with simulator_in_thread(history, config) as info:
        client = _client(info, RateLimiter(0), RetryBudget(10))
        got = _extract_all(client, history)
        truth = expected_events(info)
        stats = requests.get(f"{info.url}/_sim/stats", timeout=5).json()
    assert got == truth
    assert abs(CLOCK.offset_s - TWENTY_MINUTES) < 5
    # one refusal: the first request; every later one is signed with the gateway's time
    assert stats["requests"]["services"].get("401", 0) == 1
    assert sum(stats["requests"]["events"].get(k, 0) for k in ("401",)) == 0
    assert client.stats.retries == 0


def test_an_absurd_gateway_clock_is_refused_not_followed() -> None:
    from pipelines.source.errors import AuthenticationError

    history = generate_history(HistoryConfig(services=1, days=1, seed=2))
    config = SimulatorConfig(clock_offset_s=3 * 86_400.0)
    with simulator_in_thread(history, config) as info:
        client = _client(info, RateLimiter(0), RetryBudget(10))
        with pytest.raises(AuthenticationError, match="not a drift to correct"):
            list(client.list_services())
    assert CLOCK.offset_s == 0.0


def test_temporary_keys_expire_by_the_corrected_clock() -> None:
    from pipelines.source.credentials import Renewing

    CLOCK.learn(time.time() + TWENTY_MINUTES)
    fetched: list[float] = []

    def fetch() -> tuple[str, float]:
        fetched.append(CLOCK.now())
        return "key", CLOCK.now() + 100.0  # expires_at in the gateway's time

    keys = Renewing(fetch, "temporary AK/SK", margin_s=10.0)
    assert keys.get() == keys.get() == "key"
    assert len(fetched) == 1
    # refreshed 10 s before the gateway's expiry: 90 s from now, not 20 minutes later
    assert keys._refresh_at - CLOCK.now() == pytest.approx(90.0, abs=2.0)


# The pipeline as a run makes it (Dagster, Postgres), under a quota and a skewed clock.
HISTORY = ["--services", "16", "--days", "2", "--seed", "11", "--end-date", "2026-11-20"]


def _materialize(days: list[str]) -> list[Any]:
    instance = DagsterInstance.ephemeral()
    resources = build_resources()
    assets = [services, service_events]
    assert materialize(assets, selection=["services"], instance=instance, resources=resources)
    return [
        materialize(
            assets, selection=["service_events"], partition_key=day, instance=instance,
            resources=resources,
        )
        for day in days
    ]  # fmt: skip


def _metadata(result: Any) -> dict[str, Any]:
    # the node records `services` too (the services it upserts): pick service_events' own (one
    # per partition of a range, each with the range's metadata)
    mat = next(
        m
        for m in result.asset_materializations_for_node("service_events")
        if m.asset_key.to_user_string() == "service_events"
    )
    return {k: v.value for k, v in mat.metadata.items()}


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
@pytest.mark.parametrize(
    "sim_args",
    [
        ["--quota-per-minute", "12", "--quota-window-s", "2"],
        ["--clock-offset-s", str(TWENTY_MINUTES)],
    ],
    ids=["quota", "clock-ahead"],
)
def test_a_run_under_a_quota_or_a_skewed_clock_loads_exactly(
    sim_args: list[str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator([*HISTORY, *sim_args]) as info:
        for key, value in simulator_env(info, database_url).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv(settings.MODELARTS_PAGE_LIMIT, "50")
        days = simulator_days(info)
        metas = [_metadata(r) for r in _materialize(days)]
        expected = expected_events(info)
        stats = requests.get(f"{info.url}/_sim/stats", timeout=5).json()
    assert stored_events(database_url) == expected
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "select status, throttled from load_batches order by batch_id"
        ).fetchall()
    assert {status for status, _ in audit} == {"succeeded"}
    refused = stats["faults"].get("quota", 0)
    if "--quota-per-minute" in sim_args:
        assert refused > 0
        # the throttling is counted where a person reads it: metadata and audit rows
        throttled = sum(int(m["throttled"]) + int(m["list_throttled"]) for m in metas)
        assert 0 < throttled <= refused  # the `services` asset's listing may be refused too
        assert sum(t for _, t in audit) == sum(int(m["throttled"]) for m in metas) > 0
        assert all(m["limiter_quota"] != "none stated" for m in metas)
        # and `modelarts-etl status` shows each day's throttled count
        engine = create_engine(sqlalchemy_url(database_url))
        first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
        rows = partition_status(engine, first, last)
        engine.dispose()
        assert [r.last_throttled for r in rows] == [int(m["throttled"]) for m in metas]
    else:
        assert refused == 0 and abs(CLOCK.offset_s - TWENTY_MINUTES) < 5
        assert sum(int(m["retries"]) for m in metas) == 0


# A range that fails half-way, retried by the step's RetryPolicy (the same run): the days
# complete before the failure are kept, and the retry asks only for the rest.
RANGE_HISTORY = ["--services", "6", "--days", "4", "--seed", "11", "--end-date", "2026-11-20"]
_BROKEN: dict[str, Any] = {"armed": True, "asked_from_ms": []}


class _BreaksOnce(ModelArtsResource):
    """The project's resource, whose range client fails once on the last service's pages from
    a time on (a failure the step retries), and records where each range's requests start."""

    def build_client(self, stats: ExtractionStats | None = None) -> ModelArtsClient:
        client = super().build_client(stats)
        if stats is None:  # the listing's client
            return client
        fetch = client.fetch_events_page
        victim, from_ms = _BROKEN["victim"], _BROKEN["from_ms"]
        starts: list[int] = []
        _BROKEN["asked_from_ms"].append(starts)

        def failing(service_id: str, query: TimeWindow, offset: int, limit: int) -> Any:
            starts.append(query.start_ms)
            page = fetch(service_id, query, offset, limit)
            first = page.events[0]["occur_time"] if page.events else None
            if _BROKEN["armed"] and service_id == victim and first is not None and first >= from_ms:
                _BROKEN["armed"] = False
                raise RetriesExhaustedError(f"events of service {service_id}: gave up (test)")
            return page

        client.fetch_events_page = failing  # type: ignore[method-assign]
        return client


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_a_range_step_failing_half_way_keeps_its_days_and_its_retry_fetches_the_rest(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator(RANGE_HISTORY) as info:
        for key, value in simulator_env(info, database_url).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv(settings.MODELARTS_PAGE_LIMIT, "10")
        monkeypatch.setenv(settings.MODELARTS_WORKERS, "1")  # the last service goes last
        days = simulator_days(info)
        third = day_start_ms(date.fromisoformat(days[2]))
        resources = build_resources()
        client = resources["modelarts"].process_config_and_initialize().build_client()
        victim = [s.service_id for s in client.list_services()][-1]
        _BROKEN.update(armed=True, victim=victim, from_ms=third + 12 * 3_600_000,
                       asked_from_ms=[])  # fmt: skip
        resources["modelarts"] = _BreaksOnce(**settings.env_bound(settings.MODELARTS_FIELDS))
        instance = DagsterInstance.ephemeral()
        assets = [services, service_events]
        assert materialize(assets, selection=["services"], instance=instance, resources=resources)
        result = materialize(
            assets, selection=["service_events"], instance=instance, resources=resources,
            tags={"dagster/asset_partition_range_start": days[0],
                  "dagster/asset_partition_range_end": days[-1]},
        )  # fmt: skip
        expected = expected_events(info)
    assert result.success  # after one step retry
    assert not _BROKEN["armed"]  # the failure happened
    assert stored_events(database_url) == expected
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "select partition_key, status, run_id from load_batches order by batch_id"
        ).fetchall()
    # first attempt: days 1-2 loaded, 3-4 failed; the retry (same run): days 3-4
    assert [(k, s) for k, s, _ in audit] == [
        (days[0], "succeeded"), (days[1], "succeeded"), (days[2], "failed"),
        (days[3], "failed"), (days[2], "succeeded"), (days[3], "succeeded"),
    ]  # fmt: skip
    assert len({run for _, _, run in audit}) == 1
    first_attempt, retry = _BROKEN["asked_from_ms"]
    assert min(first_attempt) < third - 1 and min(retry) == third - 1  # the 1 ms edge margin
    meta = _metadata(result)
    assert meta["days_loaded_by_earlier_attempt"] == 2
