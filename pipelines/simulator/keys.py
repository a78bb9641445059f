"""AK/SK auth as the real gateway checks it, and the ECS metadata service that hands out
temporary keys (`PUT /meta-data/latest/api/token`, `GET /openstack/latest/securitykey`).

Signatures are verified from the raw path and query the server received, with the same
`SDK-HMAC-SHA256` definition the client signs with (pipelines/source/signer.py, itself checked
against the Huawei Cloud SDK): a bad or stale signature, an unknown or expired key, or temporary
keys without their security token get 401 `APIGW.0301`.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import unquote

import orjson

from pipelines.simulator.iam import iso_utc
from pipelines.simulator.responses import Response, json_response, modelarts_error
from pipelines.source import signer

# A signature is accepted this long either side of the server's clock (the real gateway's).
SIGNATURE_LIFE_S = 15 * 60


def signature_refused(detail: str) -> Response:
    return modelarts_error(401, "APIGW.0301", f"Incorrect IAM authentication information: {detail}")


class KeyStore:
    """The permanent key pair, the temporary keys issued, and the metadata session tokens.

    Temporary keys say they expire after `temporary_ttl_s`; with `real_life_s` set they stop
    working after that many seconds instead (a server whose credentials die early).
    """

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        temporary_ttl_s: float,
        real_life_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._now = clock  # the gateway's clock (SimulatorConfig.now)
        self._permanent = {access_key: secret_key}
        self._temporary_ttl_s = temporary_ttl_s
        self._real_life_s = real_life_s
        self._temporary: dict[str, tuple[str, str, float]] = {}  # ak -> (sk, token, dies at)
        self._sessions: dict[str, float] = {}  # metadata session token -> expiry
        self._lock = threading.Lock()

    def issue_temporary(self) -> dict[str, str]:
        """New temporary keys, as the metadata service's `credential` object."""
        ak = "SIMTMP" + secrets.token_hex(7).upper()
        sk = secrets.token_urlsafe(30)
        token = "gQpzZWN1cml0eXRva2Vu" + secrets.token_urlsafe(96)
        now = self._now()
        expires = now + self._temporary_ttl_s
        life = min(self._temporary_ttl_s, self._real_life_s or self._temporary_ttl_s)
        with self._lock:
            self._temporary[ak] = (sk, token, now + life)
        return {"access": ak, "secret": sk, "securitytoken": token, "expires_at": iso_utc(expires)}

    def open_session(self, ttl_s: float) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = self._now() + ttl_s
        return token

    def session_valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._now() < self._sessions.get(token, 0.0)

    def verify(
        self, method: str, raw_target: str, headers: Mapping[str, str], body: bytes
    ) -> str | None:
        """None when the request's signature holds, else why not (for the 401's message)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        parsed = signer.parse_authorization(lowered.get("authorization", ""))
        if parsed is None:
            return "the Authorization header is not SDK-HMAC-SHA256"
        ak, signed, signature = parsed
        if "x-sdk-date" not in signed or "host" not in signed:
            return "X-Sdk-Date and Host must be signed"
        sent = signer.parse_sdk_date(lowered.get("x-sdk-date", ""))
        if sent is None:
            return "X-Sdk-Date is missing or not YYYYMMDDTHHMMSSZ"
        server_time = datetime.fromtimestamp(self._now(), UTC)
        if abs((server_time - sent).total_seconds()) > SIGNATURE_LIFE_S:
            # the real gateway's words, with both times (API.md, "Limits of real regions")
            return (
                "calc aksk signature fail:signature expired, signature time:"
                f"{signer.sdk_date(sent)},server time:{signer.sdk_date(server_time)}"
            )
        with self._lock:
            secret = self._permanent.get(ak)
            temporary = self._temporary.get(ak)
        if secret is None and temporary is None:
            return "the access key does not exist"
        if temporary is not None:
            secret, token, dies_at = temporary
            if self._now() >= dies_at:
                return "the temporary access key has expired"
            if "x-security-token" not in signed or lowered.get("x-security-token") != token:
                return "temporary access keys need their X-Security-Token, signed"
        if any(name not in lowered for name in signed):
            return "a signed header is missing"
        path, _, query = raw_target.partition("?")
        pairs = [
            (unquote(name), unquote(value))
            for name, _, value in (part.partition("=") for part in query.split("&") if part)
        ]
        canonical = signer.canonical_request(
            method, path, signer.canonical_query(pairs), lowered, signed, body
        )
        assert secret is not None
        expected = signer.signature(secret, lowered["x-sdk-date"], canonical)
        if not hmac.compare_digest(expected, signature):
            return "verify aksk signature fail"
        return None


def metadata_token(keys: KeyStore, method: str, headers: Mapping[str, str]) -> Response:
    """PUT /meta-data/latest/api/token: a session token for X-Metadata-Token."""
    if method != "PUT":
        return json_response(405, {"error": "use PUT"})
    try:
        ttl = float(headers.get("X-Metadata-Token-Ttl-Seconds") or "21600")
    except ValueError:
        return json_response(400, {"error": "bad X-Metadata-Token-Ttl-Seconds"})
    return Response(200, keys.open_session(ttl).encode(), content_type="text/plain")


def metadata_keys(keys: KeyStore, method: str, headers: Mapping[str, str]) -> Response:
    """GET /openstack/latest/securitykey: temporary keys of the machine's agency."""
    if method != "GET":
        return json_response(405, {"error": "use GET"})
    if not keys.session_valid(headers.get("X-Metadata-Token")):
        return json_response(401, {"error": "X-Metadata-Token missing or expired"})
    return Response(200, orjson.dumps({"credential": keys.issue_temporary()}))
