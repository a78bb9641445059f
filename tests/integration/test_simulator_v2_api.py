"""The simulated v2 calls over real HTTP: paging rules, parameters, both time filters, growth."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.history import History, HistoryConfig, generate_history
from pipelines.simulator.process import SimulatorInfo, simulator_in_thread
from pipelines.simulator.records import event_records
from pipelines.simulator.v2store import is_v2_service
from pipelines.source.auth import Secret, StaticToken
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.records import fetch_service_records

pytestmark = pytest.mark.integration

TOKEN = "static-test-token"


@pytest.fixture(scope="module")
def history() -> History:
    return generate_history(
        HistoryConfig(
            services=8, days=3, end_date=dt.date(2026, 11, 29), incidents_per_service_day=6
        )
    )


@pytest.fixture(scope="module")
def sim(history: History) -> Iterator[SimulatorInfo]:
    with simulator_in_thread(history, SimulatorConfig(static_token=TOKEN, api="mixed")) as info:
        yield info


def _get(info: SimulatorInfo, path: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{info.url}/v2/{info.project_id}{path}",
        params=params,
        headers={"X-Auth-Token": TOKEN},
        timeout=30,
    )


def _v2_ids(history: History) -> list[str]:
    return [s.service_id for i, s in enumerate(history.services) if is_v2_service("mixed", i)]


def test_mixed_mode_lists_each_service_in_one_generation(
    sim: SimulatorInfo, history: History
) -> None:
    v1 = requests.get(
        f"{sim.url}/v1/{sim.project_id}/services",
        headers={"X-Auth-Token": TOKEN},
        timeout=30,
    ).json()
    v2 = _get(sim, "/services", limit=500).json()
    v1_ids = {s["service_id"] for s in v1["services"]}
    v2_ids = {s["id"] for s in v2["data"]}
    assert v2_ids == set(_v2_ids(history))
    assert not v1_ids & v2_ids
    assert v1_ids | v2_ids == {s.service_id for s in history.services}
    assert v2["total"] == len(v2_ids) == 4
    entry = v2["data"][0]
    assert entry["status"] == entry["status"].upper()
    assert isinstance(entry["create_at"], int)
    one = _get(sim, f"/services/{entry['id']}").json()
    assert one["id"] == entry["id"] and isinstance(one["create_at"], str)


def test_paging_rules(sim: SimulatorInfo, history: History) -> None:
    sid = _v2_ids(history)[0]
    default = _get(sim, f"/services/{sid}/events").json()
    assert default["size"] == 10 and len(default["data"]) == min(10, default["total"])
    assert set(default) == {"current", "pages", "size", "total", "data"}
    bad_queries: list[dict[str, Any]] = [
        {"limit": 501}, {"limit": 0}, {"limit": 10, "offset": 5}, {"offset": -10},
        {"event_type": "normal"}, {"event_info_key": "50%"}, {"sort_key": "id"},
        {"sort_dir": "asc"}, {"event_info_key": "a_b"},
    ]  # fmt: skip
    for bad in bad_queries:
        assert _get(sim, f"/services/{sid}/events", **bad).status_code == 400, bad
    page = _get(sim, f"/services/{sid}/events", limit=4, offset=8).json()
    assert page["current"] == 2 and page["pages"] == -(-page["total"] // 4)


def test_records_equal_the_timeline_and_sort_by_either_time(
    sim: SimulatorInfo, history: History
) -> None:
    for sid in _v2_ids(history):
        want = [r.to_dict() for r in event_records(sid, history.events_by_service[sid])]
        got = _get(sim, f"/services/{sid}/events", limit=500, sort_key="create_at",
                   sort_dir="ASC").json()  # fmt: skip
        assert got["total"] == len(want)
        assert sorted(got["data"], key=lambda r: r["id"]) == sorted(want, key=lambda r: r["id"])
        assert [r["create_at"] for r in got["data"]] == sorted(r["create_at"] for r in want)
        desc = _get(sim, f"/services/{sid}/events", limit=500).json()["data"]
        assert [r["update_at"] for r in desc] == sorted(
            (r["update_at"] for r in want), reverse=True
        )
        warnings = _get(sim, f"/services/{sid}/events", limit=500, event_type="ABNORMAL").json()
        assert all(r["event_type"] == "ABNORMAL" for r in warnings["data"])


@pytest.mark.parametrize("time_filter", ["create_at", "update_at"])
def test_the_window_filters_on_the_configured_time(history: History, time_filter: str) -> None:
    config = SimulatorConfig(static_token=TOKEN, api="v2", v2_time_filter=time_filter)
    with simulator_in_thread(history, config) as sim:
        sid = max(history.events_by_service, key=lambda k: len(history.events_by_service[k]))
        records = event_records(sid, history.events_by_service[sid])
        spread = [r for r in records if r.create_at != r.update_at]
        assert spread, "the history must hold a repeated record"
        r = spread[0]
        got = _get(sim, f"/services/{sid}/events", limit=500, start_time=r.update_at,
                   end_time=r.update_at).json()  # fmt: skip
        ids = {x["id"] for x in got["data"]}
        assert (r.record_id in ids) == (time_filter == "update_at")
        want = {x.record_id for x in records if r.update_at == getattr(x, time_filter)}
        assert ids == want


def test_growth_moves_a_record_to_the_head_of_an_update_at_listing(history: History) -> None:
    config = SimulatorConfig(static_token=TOKEN, api="v2", growth_rate=1.0)
    with simulator_in_thread(history, config) as sim:
        sid = history.services[0].service_id
        before = _get(sim, f"/services/{sid}/events", limit=500).json()
        after = _get(sim, f"/services/{sid}/events", limit=500).json()
        truth = requests.get(f"{sim.url}/_sim/records", timeout=30).json()
        grown = after["data"][0]
        assert grown["update_at"] > before["data"][0]["update_at"]
        old = {r["id"]: r for r in before["data"]}.get(grown["id"])
        assert old is None or grown["event_count"] == old["event_count"] + 1
        now = {r["id"]: r for r in truth["records"]}
        assert now[grown["id"]]["event_count"] >= grown["event_count"]
        assert truth["grown"] == 2


@pytest.mark.parametrize("time_filter", ["create_at", "update_at"])
def test_a_naive_pager_misses_growing_records_the_extractor_does_not(
    history: History, time_filter: str
) -> None:
    """Paging the default listing (update_at, newest first) while records grow skips records;
    the extractor (create_at ascending from the window start, no end) gets each one."""
    config = SimulatorConfig(
        static_token=TOKEN, api="v2", growth_rate=1.0, v2_time_filter=time_filter
    )
    sid = max(history.events_by_service, key=lambda k: len(history.events_by_service[k]))
    since = history.start_ms + 86_400_000  # from the second day: old records grow into it
    with simulator_in_thread(history, config) as sim:
        naive: set[str] = set()
        offset, total = 0, 1
        while offset < total:
            page = _get(sim, f"/services/{sid}/events", limit=10, offset=offset,
                        start_time=since).json()  # fmt: skip
            naive |= {r["id"] for r in page["data"]}
            total, offset = page["total"], offset + 10
        settings = HttpSettings()
        client = ModelArtsClient(
            sim.url, sim.project_id, StaticToken(Secret(TOKEN)), build_session(settings), settings
        )
        found = fetch_service_records(client, sid, since, limit=10)
        truth = requests.get(f"{sim.url}/_sim/records", timeout=30).json()["records"]
    created_since = {r["id"] for r in truth if r["service_id"] == sid and r["create_at"] >= since}
    assert created_since - naive  # the naive pager missed some
    assert created_since <= set(found.records)  # the extractor missed none
    now = {r["id"]: r for r in truth}
    # and what it holds is what the API held when it read it: counts never above the truth
    assert all(r.event_count <= now[i]["event_count"] for i, r in found.records.items())
