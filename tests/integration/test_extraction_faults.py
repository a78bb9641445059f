"""Full extraction through Dagster into Postgres against a hostile simulator over HTTP.

Each test starts its own simulator (a subprocess) with the faults it needs, points the
pipeline at it and at the test's own database, and compares what landed with the simulator's
ground truth as sets.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
import requests
from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine, text

from pipelines import settings
from pipelines.assets.events import service_events, services
from pipelines.assets.partitions import daily_partitions, day_windows
from pipelines.definitions import build_resources
from pipelines.simulator.process import SimulatorInfo, running_simulator
from pipelines.source.errors import ExtractionStalledError
from pipelines.source.extract import ExtractSettings, extract_window
from pipelines.warehouse.database import sqlalchemy_url
from tests.integration.conftest import simulator_days, simulator_env

pytestmark = pytest.mark.integration

HISTORY = ["--services", "12", "--days", "2", "--seed", "7", "--end-date", "2026-11-20"]
# >= 15% of ModelArts requests fail, in every way but `slow` (kept short: a slow answer is not
# a failure, and the test must not sleep for it).
HEAVY_FAULTS = [
    "--fault-rate",
    "0.25",
    "--fault-kinds",
    "throttle,error_json,error_html,drop,truncate,slow",
    "--slow-s",
    "0.05",
    "--retry-after-s",
    "0",
    "--token-ttl-s",
    "3",
    "--duplicate-rate",
    "0.05",
    "--malformed-rate",
    "0.03",
]
FAILURES = {"throttle", "error_json", "error_html", "drop", "truncate"}
Row = tuple[str, int, str, str]


@contextmanager
def _pipeline_on(
    sim_args: list[str], database_url: str, monkeypatch: pytest.MonkeyPatch, **env: str
) -> Iterator[SimulatorInfo]:
    with running_simulator([*HISTORY, *sim_args]) as info:
        values = {
            # IAM password auth: these tests watch tokens expire and be renewed mid-run
            **simulator_env(info, database_url, auth="password"),
            settings.MODELARTS_PAGE_LIMIT: "10",
            settings.MODELARTS_MAX_REQUESTS_PER_S: "0",
            **env,
        }
        monkeypatch.delenv(settings.MODELARTS_TOKEN, raising=False)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        yield info


def _materialize(days: list[str], raise_on_error: bool = True) -> list[Any]:
    instance = DagsterInstance.ephemeral()
    resources = build_resources()
    assets = [services, service_events]
    listing = materialize(assets, selection=["services"], instance=instance, resources=resources)
    assert listing.success
    return [
        materialize(
            assets,
            selection=["service_events"],
            partition_key=day,
            instance=instance,
            resources=resources,
            raise_on_error=raise_on_error,
        )
        for day in days
    ]


def _metadata(result: Any) -> dict[str, Any]:
    # the node records `services` too (the services it upserts): pick service_events' own
    [mat] = [
        m
        for m in result.asset_materializations_for_node("service_events")
        if m.asset_key.to_user_string() == "service_events"
    ]
    return {k: v.value for k, v in mat.metadata.items()}


def _window_ms(days: list[str]) -> tuple[int, int]:
    first = daily_partitions.time_window_for_partition_key(days[0])
    last = daily_partitions.time_window_for_partition_key(days[-1])
    return int(first.start.timestamp() * 1000), int(last.end.timestamp() * 1000)


def _expected(info: SimulatorInfo, start_ms: int, end_ms: int) -> dict[str, Any]:
    return dict(
        requests.get(
            f"{info.url}/_sim/expected",
            params={"start_time": start_ms, "end_time": end_ms - 1},
            timeout=30,
        ).json()
    )


def _expected_sets(info: SimulatorInfo, days: list[str]) -> tuple[set[Row], set[tuple[str, str]]]:
    """Events that must land, and (service_id, raw JSON) of the records that must be quarantined.

    A record the simulator calls malformed only for its unknown event_type is an event to the
    pipeline: kept, loaded and counted as unknown_event_types, never dropped.
    """
    body = _expected(info, *_window_ms(days))
    events = {
        (e["service_id"], e["occur_time"], e["event_type"], e["event_info"]) for e in body["events"]
    }
    quarantine = set()
    for m in body["malformed"]:
        raw = m["raw"]
        if m["kind"] == "event_type_unknown":
            events.add((m["service_id"], raw["occur_time"], raw["event_type"], raw["event_info"]))
        else:
            quarantine.add((m["service_id"], _canonical(raw)))
    return events, quarantine


def _canonical(raw: Any) -> str:
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()


def _stored(database_url: str) -> tuple[set[Row], set[tuple[str, str]], list[tuple[Any, ...]]]:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        events = conn.execute(
            text("select service_id, occur_time, event_type, event_info from service_events")
        ).all()
        quarantined = conn.execute(text("select service_id, raw_json from quarantined_events"))
        batches = conn.execute(
            text("select status, error from load_batches order by batch_id")
        ).all()
        quarantine = {(r[0], _canonical(orjson.loads(r[1]))) for r in quarantined}
    engine.dispose()
    return {(r[0], r[1], r[2], r[3]) for r in events}, quarantine, [tuple(b) for b in batches]


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
@pytest.mark.parametrize("mode", ["page", "record"])
def test_heavy_faults_and_expiring_tokens_land_exactly_the_simulators_events(
    mode: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _pipeline_on(
        [*HEAVY_FAULTS, "--offset-mode", mode],
        database_url,
        monkeypatch,
        **{
            settings.MODELARTS_OFFSET_MODE: mode,
            # some service-days hold more than 60 events: split them, recursively
            settings.MODELARTS_SPLIT_THRESHOLD: "60",
            settings.MODELARTS_RETRY_BUDGET: "5000",
        },
    ) as info:
        days = simulator_days(info)
        results = _materialize(days)
        expected, quarantine = _expected_sets(info, days)
        sim_stats = requests.get(f"{info.url}/_sim/stats", timeout=10).json()
        # a rerun of the same days inserts nothing
        again = [_metadata(r) for r in _materialize(days)]
    stored, quarantined, batches = _stored(database_url)
    assert stored == expected
    assert quarantined == quarantine and quarantine
    assert all(status == "succeeded" for status, _ in batches)

    metas = [_metadata(r) for r in results]
    failing = sum(n for kind, n in sim_stats["faults"].items() if kind in FAILURES)
    requests_made = sum(int(m["requests"]) + int(m["list_requests"]) for m in metas)
    assert failing >= 0.15 * requests_made, (sim_stats["faults"], requests_made)
    assert sim_stats["tokens_issued"] >= 3  # tokens expired and were renewed mid-run
    assert sum(int(m["inserted"]) for m in metas) == len(expected)
    assert sum(int(m["windows_split"]) for m in metas) > 0
    assert sum(int(m["retries"]) for m in metas) > 0
    # every record in quarantine was counted by the load that kept it
    assert sum(int(m["quarantined"]) for m in metas) >= len(quarantine)
    for m in metas:
        assert int(m["pages"]) > 0 and int(m["requests"]) >= int(m["pages"])
        assert int(m["services"]) == 12
    assert [m["inserted"] for m in again] == [0] * len(days)
    assert _stored(database_url)[0] == expected


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
@pytest.mark.parametrize(("served", "configured"), [("record", "page"), ("page", "record")])
def test_a_wrong_offset_mode_fails_loudly_and_loads_nothing(
    served: str, configured: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _pipeline_on(
        ["--offset-mode", served],
        database_url,
        monkeypatch,
        **{settings.MODELARTS_OFFSET_MODE: configured},
    ) as info:
        day = simulator_days(info)[0]
        (result,) = _materialize([day], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.to_string()
    assert "PagingError" in message and "MODELARTS_OFFSET_MODE" in message
    assert f"({configured} offsets, limit 10)" in message
    # the window asked for: the day plus the 1 ms margin at each end
    assert "service " in message and "2026-11-17T23:59:59.999" in message
    stored, _, batches = _stored(database_url)
    assert stored == set()
    assert batches and all(status == "failed" for status, _ in batches)


def test_workers_that_deliver_nothing_fail_the_window_after_the_stall_deadline(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every answer takes 3 s: with a 1 s stall deadline the consumer says what it waits on,
    then gives up instead of waiting forever."""
    slow = ["--fault-rate", "1", "--fault-kinds", "slow", "--slow-s", "3"]
    with _pipeline_on(slow, database_url, monkeypatch) as info:
        client = build_resources()["modelarts"].process_config_and_initialize().build_client()
        day = simulator_days(info)[0]
        _, window = next(day_windows(datetime.fromisoformat(f"{day}T00:00:00+00:00"),
                                     datetime.fromisoformat(f"{day}T00:00:00+00:00")
                                     + timedelta(days=1)))  # fmt: skip
        stalled = dataclasses.replace(
            ExtractSettings(workers=2), stall_timeout_s=1.0, stall_log_s=0.5
        )
        caplog.set_level(logging.WARNING, logger="pipelines.source.extract")
        with pytest.raises(ExtractionStalledError, match="no page from any worker for 1 s"):
            list(extract_window(client, ["svc-0000", "svc-0001"], window, stalled))
        # the failure was not held up until the workers' 3 s calls ended
        workers = [t for t in threading.enumerate() if t.name.startswith("extract")]
        assert any(t.is_alive() for t in workers)
        for worker in workers:  # let them end while the simulator still answers
            worker.join(timeout=30)
    assert any("waiting on services svc-0000, svc-0001" in r.message for r in caplog.records)
