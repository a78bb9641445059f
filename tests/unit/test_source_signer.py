"""The project's AK/SK signature equals the Huawei Cloud SDK's (`huaweicloudsdkcore`, the test
extra's reference) for the same request, over random paths, queries, keys and tokens."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipelines.source import signer

# Any character but lone surrogates (they cannot be encoded as UTF-8, by either side).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
RESERVED = st.text(st.sampled_from(list(" !#$%&'()*+,/:;=?@[]~-._^`{|}\"<>\\ü服务")), max_size=8)
SEGMENT = st.one_of(TEXT, RESERVED).filter(lambda s: s not in ("", ".", ".."))
KEY = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=40)
QUERY = st.lists(
    st.tuples(st.one_of(RESERVED, TEXT).filter(bool), st.one_of(TEXT, RESERVED)),
    max_size=6,
    unique_by=lambda kv: kv[0],
)
TOKEN = st.one_of(st.none(), st.text(st.sampled_from("ABCDEFabcdef0123456789+/=-_"), max_size=300))
DATE = "20261204T101112Z"


class Signed(NamedTuple):
    """One GET request to sign, by the SDK and by us."""

    path: str
    query: list[tuple[str, str]]
    host: str
    ak: str
    sk: str
    project_id: str
    token: str | None

    def headers(self) -> dict[str, str]:
        """The headers both sign (ours adds X-Project-Id, which the SDK's credentials add)."""
        return {"Host": self.host, "Content-Type": "application/json", "X-Sdk-Date": DATE}

    def sdk_authorization(self) -> str:
        request = SdkRequest(
            method="GET",
            schema="https",
            host=self.host,
            resource_path=self.path,
            query_params=list(self.query),
            header_params=self.headers(),
            body="",
        )
        credentials = BasicCredentials(self.ak, self.sk, self.project_id)
        if self.token is not None:
            credentials.with_security_token(self.token)
        signed = credentials.sign_request(request)
        return str(signed.header_params["Authorization"])

    def our_authorization(self) -> str:
        headers = self.headers() | {"X-Project-Id": self.project_id}
        if self.token is not None:
            headers["X-Security-Token"] = self.token
        return signer.sign("GET", self.path, self.query, headers, self.ak, self.sk)["Authorization"]


@settings(max_examples=400, deadline=None)
@given(
    segments=st.lists(SEGMENT, min_size=1, max_size=5),
    trailing_slash=st.booleans(),
    query=QUERY,
    ak=KEY,
    sk=KEY,
    project_id=st.text(st.sampled_from("0123456789abcdef"), min_size=32, max_size=32),
    token=TOKEN,
    port=st.one_of(st.none(), st.integers(1, 65535)),
)
@example(
    segments=["v1", "p", "services", "../hostile svc %2F 服务 ü?#", "events"],
    trailing_slash=False,
    query=[("start_time", "1794960000000"), ("order", "asc"), ("a b", "c+d&e=f")],
    ak="AKSIM",
    sk="SKSIM",
    project_id="0b1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e",
    token="temporary+token/==",
    port=8700,
)
def test_signature_equals_the_sdks(
    segments: list[str],
    trailing_slash: bool,
    query: list[tuple[str, str]],
    ak: str,
    sk: str,
    project_id: str,
    token: str | None,
    port: int | None,
) -> None:
    # the path as the client puts it on the wire: each segment fully percent-encoded
    path = "/" + "/".join(quote(s, safe="") for s in segments) + ("/" if trailing_slash else "")
    host = "modelarts.cn-north-4.myhuaweicloud.com" + (f":{port}" if port else "")
    request = Signed(path, query, host, ak, sk, project_id, token)
    assert request.our_authorization() == request.sdk_authorization()


@settings(max_examples=200, deadline=None)
@given(query=QUERY)
def test_the_query_sent_is_the_sdks_canonical_query(query: list[tuple[str, str]]) -> None:
    from huaweicloudsdkcore.signer.signer import Signer

    request = SdkRequest(query_params=list(query))
    assert signer.canonical_query(query) == Signer.process_canonical_query_string(request)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/p/services", "/v1/p/services/"),
        ("/v1/p/services/", "/v1/p/services/"),
        ("/v1/p/services/a%20b/events", "/v1/p/services/a%20b/events/"),
        ("/v1/p/services/%E6%9C%8D/events", "/v1/p/services/%E6%9C%8D/events/"),
        ("/a~b/c*d", "/a~b/c%2Ad/"),
    ],
)
def test_canonical_uri(path: str, expected: str) -> None:
    assert signer.canonical_uri(path) == expected


def test_a_changed_secret_date_or_query_changes_the_signature() -> None:
    headers = {"Host": "h", "X-Sdk-Date": DATE}
    base = signer.sign("GET", "/v1/p/services", [("offset", 0)], headers, "AK", "SK")
    assert signer.sign("GET", "/v1/p/services", [("offset", 0)], headers, "AK", "SK2") != base
    assert signer.sign("GET", "/v1/p/services", [("offset", 1)], headers, "AK", "SK") != base
    later = {**headers, "X-Sdk-Date": "20261204T101113Z"}
    assert signer.sign("GET", "/v1/p/services", [("offset", 0)], later, "AK", "SK") != base
    parsed = signer.parse_authorization(base["Authorization"])
    assert parsed is not None and parsed[0] == "AK" and parsed[1] == ["host", "x-sdk-date"]
