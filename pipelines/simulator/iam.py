"""IAM: POST /v3/auth/tokens with a password body, and the tokens it has issued."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.responses import Response, json_response


def iso_utc(epoch_s: float) -> str:
    """ISO-8601 UTC with microseconds and Z, as IAM writes it."""
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TokenStore:
    """Issued tokens and their expiry (wall clock); a static token, if set, is always valid."""

    def __init__(
        self,
        ttl_s: float,
        static_token: str | None = None,
        real_life_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._now = clock  # the gateway's clock (SimulatorConfig.now)
        self._ttl_s = ttl_s
        self._real_life_s = real_life_s
        self._static = static_token
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> tuple[str, float, float]:
        """A new token, when it was issued and when it says it expires (with `real_life_s` it
        stops working earlier)."""
        token = "MIIsim" + secrets.token_urlsafe(48)
        issued = self._now()
        expires = issued + self._ttl_s
        life = min(self._ttl_s, self._real_life_s or self._ttl_s)
        with self._lock:
            self._expiry[token] = issued + life
        return token, issued, expires

    def is_valid(self, token: str | None) -> bool:
        if not token:
            return False
        if self._static is not None and token == self._static:
            return True
        with self._lock:
            expires = self._expiry.get(token)
        return expires is not None and self._now() < expires


def _unauthorized() -> Response:
    return json_response(
        401,
        {
            "error": {
                "code": 401,
                "message": "The username or password is wrong.",
                "title": "Unauthorized",
            }
        },
    )


def _bad_request(message: str) -> Response:
    return json_response(400, {"error": {"code": 400, "message": message, "title": "Bad Request"}})


def _credentials(body: bytes) -> tuple[str, str, str, str]:
    """(user, password, domain, project name) of a password body; raises on any other shape."""
    data: Any = orjson.loads(body)
    auth = data["auth"]
    identity = auth["identity"]
    if "password" not in identity["methods"]:
        raise ValueError("methods must include password")
    user = identity["password"]["user"]
    values = (user["name"], user["password"], user["domain"]["name"])
    project = auth["scope"]["project"]["name"]
    if not all(isinstance(x, str) for x in (*values, project)):
        raise ValueError("credentials must be strings")
    return values[0], values[1], values[2], project


def issue_token(body: bytes, config: SimulatorConfig, tokens: TokenStore) -> Response:
    """201 with X-Subject-Token for the configured credentials, 401 for others, 400 if malformed."""
    try:
        user, password, domain, project = _credentials(body)
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return _bad_request("The request body is not a valid password authentication body.")
    expected = (config.username, config.password, config.domain, config.region)
    if (user, password, domain, project) != expected:
        return _unauthorized()
    token, issued, expires = tokens.issue()
    payload = {
        "token": {
            "expires_at": iso_utc(expires),
            "issued_at": iso_utc(issued),
            "methods": ["password"],
            "project": {"id": config.project_id, "name": config.region},
            "user": {"name": user, "domain": {"name": domain}},
        }
    }
    return json_response(201, payload, headers={"X-Subject-Token": token})
