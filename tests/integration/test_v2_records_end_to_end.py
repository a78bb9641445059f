"""Both API generations end to end over real HTTP: `modelarts-etl run` against the simulator
loads the v1 events and the v2 records exactly, under faults, with records that grow while the
run pages them, whichever record time the API's window filters on."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from pipelines import settings
from pipelines.cli import main
from pipelines.report.queries import read_report_data
from pipelines.simulator.process import SimulatorInfo, running_simulator
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.windows import day_start_ms
from tests.integration.conftest import (
    OneLineError,
    expected_events,
    simulator_days,
    simulator_env,
    stored_events,
)

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
HISTORY = [
    "--services", "12", "--days", "3", "--seed", "11", "--end-date", "2026-11-20",
    "--incidents-per-service-day", "6", "--vocabulary", "mix",
]  # fmt: skip
HARSH_FAULTS = [
    "--fault-rate", "0.25",
    "--fault-kinds", "throttle,error_json,error_html,drop,truncate,slow",
    "--slow-s", "0.05", "--retry-after-s", "0", "--token-ttl-s", "3",
    "--malformed-rate", "0.03",
]  # fmt: skip
Record = tuple[str, str, str, str, str, str | None, int, int, int]


@contextmanager
def _pipeline_on(
    sim_args: list[str],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    **env: str,
) -> Iterator[SimulatorInfo]:
    with running_simulator([*HISTORY, *sim_args]) as info:
        values = {**simulator_env(info, database_url, auth="password"), **env}
        monkeypatch.delenv(settings.MODELARTS_TOKEN, raising=False)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
        (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        yield info


def _record(r: dict[str, Any]) -> Record:
    return (
        r["id"], r["service_id"], r["service_version_id"], r["event_type"], r["event_info"],
        r["event_info_cn"], r["event_count"], r["create_at"], r["update_at"],
    )  # fmt: skip


def _truth(info: SimulatorInfo, start_ms: int, end_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(
        f"{info.url}/_sim/records",
        params={"start_time": start_ms, "end_time": end_ms - 1},
        timeout=30,
    ).json()
    return body


def _expected_records(info: SimulatorInfo, start_ms: int, end_ms: int) -> set[Record]:
    return {_record(r) for r in _truth(info, start_ms, end_ms)["records"]}


def _stored_records(database_url: str) -> set[Record]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select record_id, service_id, service_version_id, event_type, event_info, "
            "event_info_cn, event_count, create_at, update_at from service_event_records"
        ).fetchall()
    return {tuple(r) for r in rows}


def _rows(database_url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchall()


def _served(info: SimulatorInfo) -> dict[str, dict[str, int]]:
    stats: dict[str, Any] = requests.get(f"{info.url}/_sim/stats", timeout=10).json()
    return dict(stats["requests"])


def _minimum_requests(
    info: SimulatorInfo, start_ms: int, limit: int, time_filter: str = "update_at"
) -> int:
    """The v2 minimum: over the v2 services, ceil(records the listing holds / page size), at
    least one call each (a service without records still answers one). The listing holds the
    records whose `time_filter` time is at or after the start."""
    body = _truth(info, 0, 2**62)
    per_service: dict[str, int] = dict.fromkeys(body["v2_service_ids"], 0)
    for r in body["records"]:
        per_service[r["service_id"]] += r[time_filter] >= start_ms
    for m in body["malformed"]:
        per_service[m["service_id"]] += m["raw"]["update_at"] >= start_ms
    return sum(max(1, math.ceil(n / limit)) for n in per_service.values())


def _range_ms(days: list[str]) -> tuple[int, int]:
    from datetime import date

    start = day_start_ms(date.fromisoformat(days[0]))
    return start, start + len(days) * DAY_MS


def test_a_mixed_project_loads_v1_events_and_v2_records_exactly(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _pipeline_on(["--api", "mixed"], database_url, monkeypatch, tmp_path) as sim:
        days = simulator_days(sim)
        assert main(["run", "--start", days[0], "--end", days[-1]]) == 0
        start, end = _range_ms(days)
        v1 = expected_events(sim, start, end)
        v2 = _expected_records(sim, start, end)
        served = _served(sim)
        minimum = _minimum_requests(sim, start, 500)
        assert v1 and v2
        assert stored_events(database_url) == v1
        assert _stored_records(database_url) == v2
        # the run printed a line per day of its v2 loads
        run_lines = capsys.readouterr().out.splitlines()
        v2_lines = [line.split() for line in run_lines if line.startswith("v2 20")]
        assert [line[1].rstrip(":") for line in v2_lines] == days
        assert sum(int(line[4]) for line in v2_lines) == len(v2)  # "N new"
        # status: a v2 column per day; verify: every service of both generations matches
        assert main(["status", "--start", days[0], "--end", days[-1]]) == 0
        status = capsys.readouterr().out.splitlines()
        v2_table = status[status.index(next(x for x in status if x.startswith("v2 event"))) :]
        per_day = {line.split()[0]: line.split()[-1] for line in v2_table if line[:2] == "20"}
        created = [sum(1 for r in v2 if _range_ms([d])[0] <= r[7] < _range_ms([d])[1])
                   for d in days]  # fmt: skip
        assert [int(per_day[d]) for d in days] == created
        assert main(["verify", days[1]]) == 0
        verified = capsys.readouterr().out
        assert " v2 " in verified and " v1 " in verified and "12 services, 0 differ" in verified
        gone = min(r[0] for r in v2 if _range_ms([days[1]])[0] <= r[7] < end)
        with psycopg.connect(database_url) as conn:
            conn.execute("delete from service_event_record_changes where record_id = %s", (gone,))
            conn.execute("delete from service_event_records where record_id = %s", (gone,))
        assert main(["verify", days[1]]) == 1  # a record gone: its service differs
    # a service has one generation; v2 services carry their v2 fields, owner = user_name
    generations = dict(
        _rows(database_url, "select generation, count(*) from services group by generation")
    )
    assert generations == {"v1": 6, "v2": 6}
    v2_services = _rows(
        database_url,
        "select owner, version, version_count, service_type, created_at from services "
        "where generation = 'v2'",
    )
    assert all(None not in row for row in v2_services)
    assert {r[1] for r in v2} & {s[0] for s in _rows(database_url, "select service_id from "
                                                     "service_events")} == set()  # fmt: skip
    # one audit row per (day, generation); each new record once in the history of changes
    batches = _rows(
        database_url,
        "select partition_key, generation, status, records_new, records_regressed "
        "from load_batches order by partition_key, generation",
    )
    assert [(b[0], b[1]) for b in batches] == [(d, g) for d in days for g in ("v1", "v2")]
    assert all(b[2] == "succeeded" and b[4] == 0 for b in batches)
    assert sum(b[3] for b in batches if b[1] == "v2") == len(v2)
    changes = _rows(
        database_url, "select count(*), count(count_before) from service_event_record_changes"
    )
    assert changes == [(len(v2) - 1, 0)]  # one per record but the one deleted above
    # the report's loads per day: a day's v2 load is not a late load of its v1 events
    engine = create_warehouse_engine(database_url)
    try:
        loads = read_report_data(engine, date.fromisoformat(days[0]), date.fromisoformat(days[-1]))
    finally:
        engine.dispose()
    assert [(d.loaded, d.later_loads, d.late_events) for d in loads.loads] == [(True, 0, 0)] * 3
    assert sum(d.first_load_events for d in loads.loads) == len(v1) + len(v2)
    # the v2 requests: one listing call, and the minimum of event pages, no more
    assert sum(served["v2_services"].values()) == 1
    assert sum(served["v2_events"].values()) == minimum


@pytest.mark.parametrize("time_filter", ["create_at", "update_at"])
def test_v2_under_harsh_faults_with_growing_counts_converges_exactly(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, time_filter: str
) -> None:
    """The last two days of three: records of the first day that grow enter an update_at
    window mid-listing. Pages of 10 records, so every service takes several pages."""
    sim_args = [
        "--api", "v2", "--v2-time-filter", time_filter, "--growth-rate", "0.3", *HARSH_FAULTS,
    ]  # fmt: skip
    env = {settings.MODELARTS_PAGE_LIMIT: "10", settings.MODELARTS_MAX_REQUESTS_PER_S: "0"}
    with _pipeline_on(sim_args, database_url, monkeypatch, tmp_path, **env) as sim:
        days = simulator_days(sim)[1:]
        start, end = _range_ms(days)
        assert main(["run", "--start", days[0], "--end", days[-1]]) == 0
        first = _stored_records(database_url)
        truth = _expected_records(sim, start, end)
        served = _served(sim)
        # no record of the range is missing, however records moved; a count may lag
        by_id = {r[0]: r for r in truth}
        in_range = {r[0]: r for r in first if start <= r[7] < end}
        assert set(in_range) == set(by_id)
        assert all(r[6] <= by_id[i][6] and r[8] <= by_id[i][8] for i, r in in_range.items())
        assert all(r[:6] == by_id[i][:6] and r[7] == by_id[i][7] for i, r in in_range.items())
        lagging = sum(1 for i, r in in_range.items() if r != by_id[i])
        # requests near the minimum: the answers that came whole, beyond the minimum (taken at
        # the end: records only add up), are at most the truncated ones (a 200 cut in half)
        stats = requests.get(f"{sim.url}/_sim/stats", timeout=10).json()
        whole = served["v2_events"]["200"] - stats["faults"].get("truncate", 0)
        assert whole <= _minimum_requests(sim, start, 10, time_filter)

        requests.post(f"{sim.url}/_sim/growth", json={"rate": 0.0}, timeout=10)
        assert main(["run", "--start", days[0], "--end", days[-1]]) == 0
        truth = _expected_records(sim, start, end)
        malformed = _truth(sim, start, end)["malformed"]
        grown = _truth(sim, start, end)["grown"]
    second = {r for r in _stored_records(database_url) if start <= r[7] < end}
    assert second == truth
    assert grown > 0 and sum(served.get("v2_events", {}).values()) > 0
    faults = sum(n for status, n in served["v2_events"].items() if status != "200")
    assert faults > 0  # the v2 calls met the faults
    # bad records in quarantine with their reason, never a crash
    quarantined = _rows(
        database_url, "select count(*) from quarantined_events where reason like 'v2 record:%'"
    )[0][0]
    assert quarantined >= len(malformed) > 0
    regressed = _rows(
        database_url,
        "select coalesce(sum(records_regressed), 0), coalesce(sum(records_changed), 0) "
        "from load_batches where generation = 'v2'",
    )[0]
    assert regressed[0] == 0
    assert regressed[1] >= lagging


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_modelarts_api_loads_one_generation_only(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api: str
) -> None:
    env = {settings.MODELARTS_API: api}
    with _pipeline_on(["--api", "mixed"], database_url, monkeypatch, tmp_path, **env) as sim:
        day = simulator_days(sim)[1]
        assert main(["run", "--start", day, "--end", day]) == 0
        served = _served(sim)
    other = "v2" if api == "v1" else "v1"
    calls = {"v1": ("services", "events"), "v2": ("v2_services", "v2_events")}
    assert all(kind in served for kind in calls[api])
    assert not any(kind in served for kind in calls[other])  # not even the pre-flight
    counts = _rows(
        database_url,
        "select (select count(*) from service_events), "
        "(select count(*) from service_event_records), "
        "(select array_agg(distinct generation) from load_batches), "
        "(select array_agg(distinct generation) from services)",
    )[0]
    assert (counts[0] > 0, counts[1] > 0) == (api == "v1", api == "v2")
    assert counts[2] == [api] and counts[3] == [api]


@pytest.mark.usefixtures("clean_env")
def test_an_unknown_modelarts_api_is_refused_in_one_line(one_line_error: OneLineError) -> None:
    line = one_line_error({settings.MODELARTS_API: "v3"}, ["run"], 2)
    assert "MODELARTS_API must be 'auto', 'v1' or 'v2', not 'v3'" in line


@pytest.mark.parametrize("api", ["auto", "v1"])
def test_a_region_without_the_v1_api_loads_v2_under_auto_and_fails_under_v1(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    api: str,
) -> None:
    """Old-version services are being discontinued: where the gateway no longer publishes /v1
    (404 APIG.0101), MODELARTS_API=auto loads the v2 generation and says so; v1 asked for by
    name is an error."""
    env = {settings.MODELARTS_API: api}
    sim_args = ["--api", "v2", "--v1-retired"]
    with _pipeline_on(sim_args, database_url, monkeypatch, tmp_path, **env) as sim:
        day = simulator_days(sim)[1]
        code = main(["run", "--start", day, "--end", day])
        served = _served(sim)
        start, end = _range_ms([day])
        truth = _expected_records(sim, start, end)
    err = capsys.readouterr().err
    if api == "v1":
        assert code != 0
        assert "APIG.0101" in err
        assert err.strip().splitlines()[-1].endswith(
            "this region does not publish the /v1 API (APIG.0101: old-version services are "
            "discontinued there): set MODELARTS_API=auto or v2"
        )
        return
    assert code == 0
    assert served["unknown"] == {"404": 2}  # the pre-flight's and the run's /v1 listing, once each
    assert {r for r in _stored_records(database_url) if start <= r[7] < end} == truth != set()


def test_a_failed_v2_load_beside_the_v1_load_fails_the_run_and_keeps_the_v1_days(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The v2 records load in a thread beside the v1 events, not after them: its error reaches
    the step (the run fails, saying why) and does not stop the v1 days, which commit on their
    own."""
    import pipelines.assets.events as events_assets

    v1_days_committed_when_v2_began: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        committed = _rows(
            database_url,
            "select count(*) from load_batches where generation = 'v1' and status = 'succeeded'",
        )
        v1_days_committed_when_v2_began.append(committed[0][0])
        raise RuntimeError("the v2 records broke (test)")

    monkeypatch.setattr(events_assets, "load_records_range", broken)
    with _pipeline_on(["--api", "mixed"], database_url, monkeypatch, tmp_path) as sim:
        days = simulator_days(sim)
        assert main(["run", "--start", days[0], "--end", days[-1]]) == 1
        start, end = _range_ms(days)
        v1 = expected_events(sim, start, end)
    assert "the v2 records broke (test)" in capsys.readouterr().out
    assert v1 and stored_events(database_url) == v1
    batches = _rows(
        database_url, "select partition_key, generation, status from load_batches order by 1, 2"
    )
    assert batches == [(d, "v1", "succeeded") for d in days]
    # the v2 load began while the v1 range was still loading (after it, all 3 days would be in)
    assert v1_days_committed_when_v2_began[0] < len(days)
