"""Each fault kind is observable over HTTP; repeats, malformed and late records in expected."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.history import History, HistoryConfig, generate_history
from pipelines.simulator.process import SimulatorInfo, simulator_in_thread
from pipelines.source.auth import password_token_body

pytestmark = pytest.mark.integration

TOKEN = "static-test-token"


@pytest.fixture(scope="module")
def history() -> History:
    return generate_history(HistoryConfig(services=5, days=2, end_date=dt.date(2026, 11, 29)))


@contextlib.contextmanager
def _sim(history: History, **faults: Any) -> Iterator[SimulatorInfo]:
    with simulator_in_thread(history, SimulatorConfig(static_token=TOKEN, **faults)) as info:
        yield info


def _events_url(info: SimulatorInfo, history: History, index: int = 0) -> str:
    sid = history.services[index].service_id
    return f"{info.url}/v1/{info.project_id}/services/{sid}/events"


def _get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, headers={"X-Auth-Token": TOKEN}, params=params, timeout=5)


def _stats(info: SimulatorInfo) -> dict[str, Any]:
    return dict(requests.get(f"{info.url}/_sim/stats", timeout=5).json())


def test_throttle(history: History) -> None:
    with _sim(history, fault_rate=1.0, fault_kinds=("throttle",), retry_after_s=0) as info:
        r = _get(_events_url(info, history))
        assert r.status_code == 429 and r.headers["Retry-After"] == "0"
        assert r.json() == {"error_code": "APIG.0308", "error_msg": "The request is throttled."}
        assert _stats(info)["faults"] == {"throttle": 1}


@pytest.mark.parametrize(("kind", "content_type"), [("error_json", "json"), ("error_html", "html")])
def test_gateway_errors(history: History, kind: str, content_type: str) -> None:
    with _sim(history, fault_rate=1.0, fault_kinds=(kind,)) as info:
        statuses = set()
        for _ in range(12):
            r = _get(_events_url(info, history))
            statuses.add(r.status_code)
            assert content_type in r.headers["Content-Type"]
            if kind == "error_html":
                assert r.text.startswith("<html>")
            else:
                assert r.json()["error_code"].startswith("APIG.")
        assert statuses <= {500, 502, 503} and len(statuses) >= 2


def test_dropped_connection(history: History) -> None:
    with _sim(history, fault_rate=1.0, fault_kinds=("drop",)) as info:
        with pytest.raises(requests.ConnectionError):
            _get(_events_url(info, history))
        assert _stats(info)["faults"] == {"drop": 1}


def test_truncated_body(history: History) -> None:
    broken = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError)
    with (
        _sim(history, fault_rate=1.0, fault_kinds=("truncate",)) as info,
        pytest.raises(broken),
    ):
        _get(_events_url(info, history))


def test_slow_response(history: History) -> None:
    with _sim(history, fault_rate=1.0, fault_kinds=("slow",), slow_s=0.3) as info:
        started = time.perf_counter()
        r = _get(_events_url(info, history))
        assert r.status_code == 200 and time.perf_counter() - started >= 0.3


def test_latency_delays_every_api_answer(history: History) -> None:
    """The round trip of a real region (bench_command.py --latency-ms): an API answer waits."""
    with _sim(history, latency_s=0.4) as info:
        started = time.perf_counter()
        assert _get(_events_url(info, history)).status_code == 200
        assert time.perf_counter() - started >= 0.4


def test_faults_spare_iam_and_admin(history: History) -> None:
    with _sim(history, fault_rate=1.0, fault_kinds=("drop",)) as info:
        body = password_token_body(info.username, info.password, info.domain, info.region)
        assert requests.post(f"{info.url}/v3/auth/tokens", json=body, timeout=5).status_code == 201
        assert requests.get(f"{info.url}/_sim/info", timeout=5).ok


def test_partial_fault_rate_mixes_kinds(history: History) -> None:
    with _sim(history, fault_rate=0.5, fault_kinds=("throttle", "error_json"), seed=3) as info:
        statuses = [_get(_events_url(info, history)).status_code for _ in range(40)]
        assert 200 in statuses and 429 in statuses and set(statuses) & {500, 502, 503}
        faults = _stats(info)["faults"]
        assert faults["throttle"] + faults["error_json"] == statuses.count(429) + sum(
            s >= 500 for s in statuses
        )


def _expected_keys(info: SimulatorInfo) -> set[tuple[str, int, str]]:
    expected = requests.get(f"{info.url}/_sim/expected", timeout=10).json()
    keys = [(e["service_id"], e["occur_time"], e["event_info"]) for e in expected["events"]]
    assert len(keys) == len(set(keys))
    return set(keys)


def _history_keys(history: History) -> set[tuple[str, int, str]]:
    return {
        (sid, e.occur_time, e.event_info)
        for sid, events in history.events_by_service.items()
        for e in events
    }


def test_duplicates_served_but_expected_deduplicated(history: History) -> None:
    with _sim(history, duplicate_rate=0.3) as info:
        body = _get(_events_url(info, history), order="asc").json()
        served = [(e["occur_time"], e["event_info"]) for e in body["events"]]
        assert len(served) > len(set(served))
        assert body["total_count"] > len(history.events_by_service[history.services[0].service_id])
        assert _expected_keys(info) == _history_keys(history)
        assert _stats(info)["faults"]["duplicate"] > 0


def test_malformed_records_listed_apart(history: History) -> None:
    with _sim(history, malformed_rate=0.2) as info:
        body = _get(_events_url(info, history), order="asc").json()
        valid = {
            (e.occur_time, e.event_info) for e in history.events_by_service[body["service_id"]]
        }
        odd = [e for e in body["events"] if (e.get("occur_time"), e.get("event_info")) not in valid]
        assert odd
        expected = requests.get(f"{info.url}/_sim/expected", timeout=10).json()
        raws = [m["raw"] for m in expected["malformed"] if m["service_id"] == body["service_id"]]
        assert all(record in raws for record in odd)
        assert _expected_keys(info) == _history_keys(history)


def test_arrivals_grow_total_count_inside_the_window(history: History) -> None:
    sid = history.services[0].service_id
    window = {"start_time": history.start_ms, "end_time": history.start_ms + 86_400_000}
    with _sim(history, arrival_rate=1.0) as info:
        totals = []
        for page in range(3):
            body = _get(_events_url(info, history), order="asc", limit=20, offset=page, **window)
            totals.append(body.json()["total_count"])
        assert totals[0] < totals[1] < totals[2]
        keys = _expected_keys(info)
        arrived = keys - _history_keys(history)
        assert len(arrived) == 3
        assert all(
            s == sid and window["start_time"] <= t <= window["end_time"] for s, t, _ in arrived
        )
