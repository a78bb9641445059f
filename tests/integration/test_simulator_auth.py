"""The simulator checks AK/SK signatures as the real gateway does: a good signature passes; a
wrong key, a changed query, a stale X-Sdk-Date, or temporary keys without their security token
get 401 APIGW.0301. Its metadata endpoints hand out temporary keys behind a session token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.history import HistoryConfig, generate_history
from pipelines.simulator.process import SimulatorInfo, simulator_in_thread
from pipelines.source import signer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorInfo]:
    history = generate_history(HistoryConfig(services=2, days=1, seed=4))
    with simulator_in_thread(history, SimulatorConfig(temporary_key_ttl_s=600)) as info:
        yield info


def _get(
    info: SimulatorInfo,
    ak: str,
    sk: str,
    *,
    token: str | None = None,
    date: str | None = None,
    sent_query: str | None = None,
) -> requests.Response:
    path = f"/v1/{info.project_id}/services"
    params = [("offset", 0), ("limit", 10), ("note", "a b+c/ü")]
    headers = {"Host": urlsplit(info.url).netloc, "Content-Type": "application/json"}
    if token is not None:
        headers["X-Security-Token"] = token
    if date is not None:
        headers["X-Sdk-Date"] = date
    signed = signer.sign("GET", path, params, headers, ak, sk)
    query = signer.canonical_query(params) if sent_query is None else sent_query
    return requests.get(f"{info.url}{path}?{query}", headers=signed, timeout=10)


def _temporary_keys(info: SimulatorInfo) -> dict[str, str]:
    session = requests.put(
        f"{info.url}/meta-data/latest/api/token",
        headers={"X-Metadata-Token-Ttl-Seconds": "60"},
        timeout=10,
    )
    assert session.status_code == 200
    keys = requests.get(
        f"{info.url}/openstack/latest/securitykey",
        headers={"X-Metadata-Token": session.text},
        timeout=10,
    )
    assert keys.status_code == 200
    return dict(keys.json()["credential"])


def _refused(response: requests.Response) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error_code"] == "APIGW.0301"
    return str(body["error_msg"])


def test_a_good_signature_passes(sim: SimulatorInfo) -> None:
    response = _get(sim, sim.access_key, sim.secret_key)
    assert response.status_code == 200, response.text
    assert response.json()["total_count"] == 2


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"sk": "wrong"}, "verify aksk signature fail"),
        ({"ak": "NOSUCHKEY"}, "the access key does not exist"),
        ({"sent_query": "limit=10&note=a%20b%2Bc%2F%C3%BC&offset=1"}, "signature fail"),
        ({"date": "20261101T000000Z"}, "signature expired, signature time:20261101T000000Z,"),
    ],
)
def test_a_bad_or_stale_signature_is_refused(
    sim: SimulatorInfo, change: dict[str, str], says: str
) -> None:
    ak, sk = change.pop("ak", sim.access_key), change.pop("sk", sim.secret_key)
    assert says in _refused(_get(sim, ak, sk, **change))


def test_a_signature_a_few_minutes_old_still_passes(sim: SimulatorInfo) -> None:
    date = signer.sdk_date(datetime.now(UTC) - timedelta(minutes=10))
    assert _get(sim, sim.access_key, sim.secret_key, date=date).status_code == 200


def test_temporary_keys_work_only_with_their_security_token(sim: SimulatorInfo) -> None:
    keys = _temporary_keys(sim)
    ok = _get(sim, keys["access"], keys["secret"], token=keys["securitytoken"])
    assert ok.status_code == 200, ok.text
    assert "X-Security-Token" in _refused(_get(sim, keys["access"], keys["secret"]))
    assert "X-Security-Token" in _refused(
        _get(sim, keys["access"], keys["secret"], token=keys["securitytoken"] + "x")
    )


def test_the_metadata_keys_need_a_session_token(sim: SimulatorInfo) -> None:
    response = requests.get(f"{sim.url}/openstack/latest/securitykey", timeout=10)
    assert response.status_code == 401


def test_temporary_keys_that_die_early_are_refused() -> None:
    history = generate_history(HistoryConfig(services=1, days=1, seed=4))
    config = SimulatorConfig(temporary_key_ttl_s=3600, credential_real_life_s=0.2)
    with simulator_in_thread(history, config) as info:
        keys = _temporary_keys(info)
        time.sleep(0.3)
        says = _refused(_get(info, keys["access"], keys["secret"], token=keys["securitytoken"]))
    assert "expired" in says


class _RecordingSession(requests.Session):
    """Notes the Authorization header of every send (the real session underneath)."""

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.authorizations.append(str(request.headers.get("Authorization")))
        return super().send(request, **kwargs)


def test_every_send_is_signed_afresh_retries_included() -> None:
    from pipelines.source.auth import AccessKeyAuth, StaticKeys
    from pipelines.source.client import HttpSettings, ModelArtsClient
    from pipelines.source.credentials import AccessKey, Secret

    history = generate_history(HistoryConfig(services=3, days=1, seed=4))
    config = SimulatorConfig(fault_rate=0.6, fault_kinds=("throttle",), retry_after_s=1, seed=3)
    with simulator_in_thread(history, config) as info:
        session = _RecordingSession()
        keys = StaticKeys(AccessKey(info.access_key, Secret(info.secret_key)))
        http = HttpSettings(max_retries=10, backoff_factor_s=0.01)
        auth = AccessKeyAuth(keys, info.project_id, "test keys")
        client = ModelArtsClient(info.url, info.project_id, auth, session, http)
        listed = list(client.list_services(limit=1))
    assert len(listed) == 3
    assert client.stats.throttled > 0  # throttled, waited Retry-After, sent again
    # each send carries its own signature: a retry is never a replayed (staling) one
    assert len(session.authorizations) == len(set(session.authorizations)) > 3
