"""The simulated IAM and ModelArts calls over real HTTP on loopback (in-thread server)."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

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
    return generate_history(HistoryConfig(services=6, days=2, end_date=dt.date(2026, 11, 29)))


@pytest.fixture(scope="module")
def sim(history: History) -> Iterator[SimulatorInfo]:
    with simulator_in_thread(history, SimulatorConfig(static_token=TOKEN)) as info:
        yield info


@pytest.fixture()
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers["X-Auth-Token"] = TOKEN
        yield s


def password_body(info: SimulatorInfo, **override: str) -> dict[str, Any]:
    values = {
        "username": info.username,
        "password": info.password,
        "domain": info.domain,
        "project": info.region,
    }
    return password_token_body(**(values | override))


def events_url(info: SimulatorInfo, service_id: str) -> str:
    return f"{info.url}/v1/{info.project_id}/services/{quote(service_id, safe='')}/events"


def busiest(history: History) -> str:
    return max(history.events_by_service, key=lambda k: len(history.events_by_service[k]))


def test_token_flow(sim: SimulatorInfo) -> None:
    r = requests.post(f"{sim.url}/v3/auth/tokens", json=password_body(sim), timeout=5)
    assert r.status_code == 201
    token = r.headers["X-Subject-Token"]
    body = r.json()["token"]
    assert body["expires_at"].endswith("Z") and len(body["expires_at"]) == 27
    assert body["project"] == {"id": sim.project_id, "name": sim.region}
    assert body["methods"] == ["password"]
    listing = requests.get(
        f"{sim.url}/v1/{sim.project_id}/services", headers={"X-Auth-Token": token}, timeout=5
    )
    assert listing.status_code == 200
    assert listing.json()["total_count"] == sim.services


@pytest.mark.parametrize("field", ["username", "password", "domain", "project"])
def test_wrong_credentials_401(sim: SimulatorInfo, field: str) -> None:
    r = requests.post(
        f"{sim.url}/v3/auth/tokens", json=password_body(sim, **{field: "wrong"}), timeout=5
    )
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "The username or password is wrong."


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"auth": {"identity": 3}}'])
def test_malformed_token_body_400(sim: SimulatorInfo, body: bytes) -> None:
    assert requests.post(f"{sim.url}/v3/auth/tokens", data=body, timeout=5).status_code == 400


def test_token_expiry(history: History) -> None:
    with simulator_in_thread(history, SimulatorConfig(token_ttl_s=0.5)) as info:
        r = requests.post(f"{info.url}/v3/auth/tokens", json=password_body(info), timeout=5)
        headers = {"X-Auth-Token": r.headers["X-Subject-Token"]}
        url = f"{info.url}/v1/{info.project_id}/services"
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        time.sleep(0.7)
        expired = requests.get(url, headers=headers, timeout=5)
        assert expired.status_code == 401
        assert expired.json()["error_code"] == "APIG.0307"


@pytest.mark.parametrize("token", [None, "unknown-token"])
def test_401_without_valid_token(sim: SimulatorInfo, history: History, token: str | None) -> None:
    headers = {} if token is None else {"X-Auth-Token": token}
    r = requests.get(events_url(sim, busiest(history)), headers=headers, timeout=5)
    assert r.status_code == 401
    assert r.json() == {"error_code": "APIG.0307", "error_msg": "The token must be updated."}


def test_unknown_project_404(sim: SimulatorInfo, session: requests.Session) -> None:
    r = session.get(f"{sim.url}/v1/0000/services", timeout=5)
    assert r.status_code == 404 and r.json()["error_code"].startswith("ModelArts.")


def test_defaults_desc_page_zero_limit_1000(
    sim: SimulatorInfo, history: History, session: requests.Session
) -> None:
    sid = busiest(history)
    events = history.events_by_service[sid]
    r = session.get(events_url(sim, sid), timeout=5)
    body = r.json()
    assert list(body) == ["service_name", "total_count", "service_id", "count", "events"]
    assert list(body["events"][0]) == ["event_type", "event_info", "occur_time"]
    assert body["total_count"] == len(events)
    assert body["count"] == min(1000, len(events))
    newest_first = [e.to_dict() for e in reversed(events)][:1000]
    assert body["events"] == newest_first
    assert r.headers["Content-Length"] == str(len(r.content))


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 1001},
        {"limit": 0},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "1.5"},
        {"order": "up"},
        {"sort_by": "event_info"},
        {"event_type": "warning"},
        {"start_time": "yesterday"},
    ],
)
def test_bad_parameters_400(
    sim: SimulatorInfo, history: History, session: requests.Session, params: dict[str, Any]
) -> None:
    r = session.get(events_url(sim, busiest(history)), params=params, timeout=5)
    assert r.status_code == 400
    assert r.json()["error_code"] == "ModelArts.0101"


def test_page_index_offset(sim: SimulatorInfo, history: History, session: requests.Session) -> None:
    sid = busiest(history)
    events = [e.to_dict() for e in history.events_by_service[sid]]
    page = session.get(
        events_url(sim, sid), params={"order": "asc", "limit": "50", "offset": "2"}, timeout=5
    ).json()
    assert page["events"] == events[100:150]


def test_record_offset_mode(history: History) -> None:
    sid = busiest(history)
    events = [e.to_dict() for e in history.events_by_service[sid]]
    config = SimulatorConfig(static_token=TOKEN, offset_mode="record")
    with simulator_in_thread(history, config) as info, requests.Session() as s:
        s.headers["X-Auth-Token"] = TOKEN
        page = s.get(
            events_url(info, sid), params={"order": "asc", "limit": "50", "offset": "2"}, timeout=5
        ).json()
    assert page["events"] == events[2:52]


def test_window_ends_are_inclusive_and_filters(
    sim: SimulatorInfo, history: History, session: requests.Session
) -> None:
    sid = busiest(history)
    events = history.events_by_service[sid]
    lo, hi = events[10].occur_time, events[40].occur_time
    inside = [e.to_dict() for e in events if lo <= e.occur_time <= hi]
    body = session.get(
        events_url(sim, sid),
        params={"start_time": str(lo), "end_time": str(hi), "order": "asc"},
        timeout=5,
    ).json()
    assert body["events"] == inside and body["total_count"] == len(inside)
    abnormal = session.get(
        events_url(sim, sid), params={"event_type": "abnormal", "order": "asc"}, timeout=5
    ).json()
    assert abnormal["events"] == [e.to_dict() for e in events if e.event_type == "abnormal"]


def test_ties_keep_insertion_order(
    sim: SimulatorInfo, history: History, session: requests.Session
) -> None:
    sid = history.services[3].service_id  # the forced same-millisecond pair
    events = history.events_by_service[sid]
    pair = next((a, b) for a, b in itertools.pairwise(events) if a.occur_time == b.occur_time)
    params = {"start_time": str(pair[0].occur_time), "end_time": str(pair[0].occur_time)}
    asc = session.get(events_url(sim, sid), params={**params, "order": "asc"}, timeout=5).json()
    desc = session.get(events_url(sim, sid), params=params, timeout=5).json()
    assert [e["event_info"] for e in asc["events"]][:2] == [pair[0].event_info, pair[1].event_info]
    assert desc["events"] == asc["events"][::-1]


def test_unknown_service_404(sim: SimulatorInfo, session: requests.Session) -> None:
    r = session.get(events_url(sim, "no/such service"), timeout=5)
    assert r.status_code == 404
    assert r.json()["error_code"] == "ModelArts.3502"
    assert "no/such service" in r.json()["error_msg"]


def test_percent_encoded_service_id(
    sim: SimulatorInfo, history: History, session: requests.Session
) -> None:
    sid = history.services[0].service_id
    encoded = "".join(f"%{b:02X}" for b in sid.encode())
    r = session.get(f"{sim.url}/v1/{sim.project_id}/services/{encoded}/events", timeout=5)
    assert r.status_code == 200 and r.json()["service_id"] == sid


def test_listing_pages(sim: SimulatorInfo, history: History, session: requests.Session) -> None:
    url = f"{sim.url}/v1/{sim.project_id}/services"
    page = session.get(url, params={"limit": 4, "offset": 1}, timeout=5).json()
    assert page["total_count"] == 6 and page["count"] == 2
    assert [s["service_id"] for s in page["services"]] == [
        s.service_id for s in history.services[4:]
    ]
    assert set(page["services"][0]) >= {
        "service_id",
        "service_name",
        "status",
        "infer_type",
        "owner",
        "publish_at",
    }


def test_keep_alive_reuses_the_connection(sim: SimulatorInfo, history: History) -> None:
    def connections() -> int:
        return int(requests.get(f"{sim.url}/_sim/stats", timeout=5).json()["connections"])

    before = connections()
    with requests.Session() as s:
        s.headers["X-Auth-Token"] = TOKEN
        for _ in range(6):
            assert s.get(events_url(sim, busiest(history)), timeout=5).status_code == 200
    assert connections() - before == 2  # the session's one, and this stats call's own


def test_admin_info_and_truth(sim: SimulatorInfo, history: History) -> None:
    info = requests.get(f"{sim.url}/_sim/info", timeout=5).json()
    assert info["start_ms"] == history.start_ms and info["end_ms"] == history.end_ms
    assert info["start_date"] == "2026-11-27" and info["end_date"] == "2026-11-29"
    assert info["events"] == history.event_count == sim.events
    truth = requests.get(f"{sim.url}/_sim/truth", timeout=5).json()
    assert truth == [a.to_dict() for a in history.attempts]
    early = requests.get(
        f"{sim.url}/_sim/truth", params={"as_of": history.start_ms - 1}, timeout=5
    ).json()
    assert early == []


def test_late_events_and_deletion(history: History) -> None:
    sid = history.services[5].service_id
    late = {"occur_time": history.start_ms + 5, "event_type": "normal", "event_info": "late one"}
    with simulator_in_thread(history, SimulatorConfig(static_token=TOKEN)) as info:
        r = requests.post(
            f"{info.url}/_sim/events", json={"service_id": sid, "events": [late]}, timeout=5
        )
        assert r.status_code == 200
        expected = requests.get(f"{info.url}/_sim/expected", timeout=5).json()
        assert {"service_id": sid, **late} in expected["events"]
        headers = {"X-Auth-Token": TOKEN}
        page = requests.get(
            events_url(info, sid), params={"order": "asc", "limit": "1"}, headers=headers, timeout=5
        ).json()
        assert page["events"] == [late] or page["events"][0]["occur_time"] <= late["occur_time"]
        assert page["total_count"] == len(history.events_by_service[sid]) + 1
        assert requests.post(f"{info.url}/_sim/services/{sid}/delete", timeout=5).ok
        gone = requests.get(events_url(info, sid), headers=headers, timeout=5)
        assert gone.status_code == 404 and gone.json()["error_code"] == "ModelArts.3502"
