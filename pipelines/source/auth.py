"""Tokens for the ModelArts API: a static token or IAM password auth, cached and thread-safe."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import requests

from pipelines.source.errors import AuthenticationError, TransientHTTPError
from pipelines.source.retrying import RetryBudget, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)


class Secret:
    """A string that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


class TokenProvider(Protocol):
    def token(self) -> str:
        """A currently valid token."""
        ...

    def invalidate(self, token: str) -> None:
        """Forget `token` (the API said it expired) so the next call gets a fresh one."""
        ...


class StaticToken:
    """A token given from outside (MODELARTS_TOKEN); it cannot be refreshed."""

    def __init__(self, token: Secret):
        self._token = token

    def token(self) -> str:
        return self._token.reveal()

    def invalidate(self, token: str) -> None:
        log.warning("the configured static token was refused as expired; it cannot be refreshed")

    def __repr__(self) -> str:
        return "StaticToken(***)"


@dataclass(frozen=True)
class IAMCredentials:
    iam_endpoint: str
    username: str
    password: Secret
    domain: str
    project_name: str


class IAMPasswordAuth:
    """Fetches a user token with a password and reuses it until shortly before it expires."""

    def __init__(
        self,
        credentials: IAMCredentials,
        session: requests.Session,
        timeout: tuple[float, float] = (5.0, 30.0),
        refresh_margin_s: float = 300.0,
        *,
        policy: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
    ):
        self._credentials = credentials
        self._session = session
        self._timeout = timeout
        self._refresh_margin_s = refresh_margin_s
        self._policy = policy or RetryPolicy()
        self._budget = budget or RetryBudget(None)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.tokens_issued = 0

    def __repr__(self) -> str:
        return f"IAMPasswordAuth(user={self._credentials.username!r}, password=***)"

    def token(self) -> str:
        # One lock: while one worker fetches a token the others wait for it instead of each
        # asking IAM for their own.
        with self._lock:
            if self._token is None or time.time() >= self._refresh_at:
                issued_at = time.time()
                self._token, expires_at = call_with_retries(
                    self._issue, "IAM token request", self._policy, self._budget
                )
                # Refresh `refresh_margin_s` before expiry, or after 80% of the token's life
                # when it lives shorter than that (a margin longer than the life would fetch a
                # new token on every call).
                life = max(0.0, expires_at - issued_at)
                self._refresh_at = expires_at - min(self._refresh_margin_s, 0.2 * life)
            return self._token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def _issue(self) -> tuple[str, float]:
        c = self._credentials
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": c.username,
                            "password": c.password.reveal(),
                            "domain": {"name": c.domain},
                        }
                    },
                },
                "scope": {"project": {"name": c.project_name}},
            }
        }
        url = c.iam_endpoint.rstrip("/") + "/v3/auth/tokens"
        # Transport errors propagate to call_with_retries, which retries them.
        response = self._session.post(url, json=body, timeout=self._timeout)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientHTTPError(response.status_code, None, None, "IAM token request")
        token = response.headers.get("X-Subject-Token")
        if response.status_code != 201 or not token:
            raise AuthenticationError(
                f"IAM refused the token request for user {c.username!r}: "
                f"HTTP {response.status_code}"
            )
        expires_at = _parse_expiry(response)
        self.tokens_issued += 1
        log.info("obtained an IAM token for user %s", c.username)
        return token, expires_at


def _parse_expiry(response: requests.Response) -> float:
    """`token.expires_at` as epoch seconds; one hour from now when absent or unreadable."""
    try:
        text = response.json()["token"]["expires_at"]
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError):
        return time.time() + 3600.0
