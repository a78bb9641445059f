"""How each ModelArts request is authorized: AK/SK signing (keys from the environment, the
credentials file or the ECS metadata service), an IAM password token, or a static token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from pipelines.source import signer
from pipelines.source.clock import CLOCK
from pipelines.source.credentials import (
    AccessKey,
    MetadataKeys,
    Renewing,
    Secret,
    parse_expiry,
)
from pipelines.source.errors import AuthenticationError, TransientHTTPError
from pipelines.source.retrying import RetryBudget, RetryPolicy, call_with_retries

__all__ = [
    "AccessKeyAuth",
    "IAMCredentials",
    "IAMPasswordAuth",
    "RequestAuth",
    "Secret",
    "StaticToken",
    "password_token_body",
]

log = logging.getLogger(__name__)


class RequestAuth(Protocol):
    """Authorizes one send of a request; every send (retries too) asks afresh."""

    @property
    def source(self) -> str:
        """Where the credential comes from, for logs, errors and `status` (never a secret)."""
        ...

    @property
    def renewable(self) -> bool:
        """Whether a refused credential can be replaced by a new one."""
        ...

    def authorize(
        self, method: str, host: str, path: str, params: Sequence[tuple[str, object]]
    ) -> tuple[object, dict[str, str]]:
        """(the credential used, the headers that carry it) for this send."""
        ...

    def refused(self, credential: object) -> None:
        """The API answered 401 to a send made with `credential`."""
        ...


class StaticToken:
    """A token given from outside (MODELARTS_TOKEN); it cannot be refreshed."""

    source = "static token (MODELARTS_TOKEN)"
    renewable = False

    def __init__(self, token: Secret):
        self._token = token

    def token(self) -> str:
        return self._token.reveal()

    def authorize(
        self, method: str, host: str, path: str, params: Sequence[tuple[str, object]]
    ) -> tuple[object, dict[str, str]]:
        return self._token, {"X-Auth-Token": self._token.reveal()}

    def refused(self, credential: object) -> None:
        """Nothing to renew: a second refusal fails the request, naming this source."""

    def __repr__(self) -> str:
        return "StaticToken(***)"


def password_token_body(username: str, password: str, domain: str, project: str) -> dict[str, Any]:
    """The body of POST /v3/auth/tokens: a user token by password, scoped to a project (by name)."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": username, "password": password, "domain": {"name": domain}}
                },
            },
            "scope": {"project": {"name": project}},
        }
    }


@dataclass(frozen=True)
class IAMCredentials:
    iam_endpoint: str
    username: str
    password: Secret
    domain: str
    project_name: str


class IAMPasswordAuth:
    """A user token fetched with a password, shared by all threads and renewed before it expires
    or when the API refuses it (see `Renewing`)."""

    renewable = True

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
        self._policy = policy or RetryPolicy()
        self._budget = budget or RetryBudget(None)
        self._tokens: Renewing[Secret] = Renewing(
            self._issue_with_retries, "IAM token", refresh_margin_s
        )

    @property
    def source(self) -> str:
        c = self._credentials
        return f"IAM password of user {c.username} (HUAWEICLOUD_USERNAME) at {c.iam_endpoint}"

    @property
    def tokens_issued(self) -> int:
        return self._tokens.fetched

    def __repr__(self) -> str:
        return f"IAMPasswordAuth(user={self._credentials.username!r}, password=***)"

    def token(self) -> str:
        return self._tokens.get().reveal()

    def authorize(
        self, method: str, host: str, path: str, params: Sequence[tuple[str, object]]
    ) -> tuple[object, dict[str, str]]:
        token = self._tokens.get()
        return token, {"X-Auth-Token": token.reveal()}

    def refused(self, credential: object) -> None:
        if isinstance(credential, Secret):
            self._tokens.refused(credential)

    def _issue_with_retries(self) -> tuple[Secret, float]:
        token, expires_at = call_with_retries(
            self._issue, "IAM token request", self._policy, self._budget
        )
        return Secret(token), expires_at

    def _issue(self) -> tuple[str, float]:
        c = self._credentials
        body = password_token_body(c.username, c.password.reveal(), c.domain, c.project_name)
        url = c.iam_endpoint.rstrip("/") + "/v3/auth/tokens"
        # Transport errors propagate to call_with_retries, which retries them.
        response = self._session.post(url, json=body, timeout=self._timeout)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientHTTPError(response.status_code, None, None, "IAM token request")
        token = response.headers.get("X-Subject-Token")
        if response.status_code != 201 or not token:
            raise AuthenticationError(
                f"IAM at {c.iam_endpoint} refused the password of user {c.username!r} "
                f"(HUAWEICLOUD_USERNAME/HUAWEICLOUD_PASSWORD): HTTP {response.status_code}"
            )
        expires_at = _token_expiry(response)
        log.info("obtained an IAM token for user %s", c.username)
        return token, expires_at


class StaticKeys:
    """Keys that do not change during a run (the environment, the credentials file)."""

    def __init__(self, key: AccessKey):
        self._key = key

    def current(self) -> AccessKey:
        return self._key

    def refused(self, key: AccessKey) -> None:
        """Nothing to renew: the resend is signed afresh, which cures a stale signature."""


class AccessKeyAuth:
    """Signs every send with AK/SK (`SDK-HMAC-SHA256`, see signer.py), as the SDK does: host,
    content type, X-Sdk-Date, X-Project-Id and, for temporary keys, X-Security-Token."""

    def __init__(self, keys: StaticKeys | MetadataKeys, project_id: str, source: str):
        self._keys = keys
        self._project_id = project_id
        self._source = source

    @property
    def source(self) -> str:
        return self._source

    @property
    def renewable(self) -> bool:
        return isinstance(self._keys, MetadataKeys)

    def __repr__(self) -> str:
        return f"AccessKeyAuth({self._source!r})"

    def authorize(
        self, method: str, host: str, path: str, params: Sequence[tuple[str, object]]
    ) -> tuple[object, dict[str, str]]:
        key = self._keys.current()
        headers: dict[str, str] = {
            "Host": host,
            "Content-Type": "application/json",
            "X-Project-Id": self._project_id,
            # the gateway's time, corrected when it said ours is off (clock.py)
            signer.DATE_HEADER: signer.sdk_date(CLOCK.now_utc()),
        }
        if key.security_token is not None:
            headers["X-Security-Token"] = key.security_token.reveal()
        return key, signer.sign(method, path, params, headers, key.ak, key.sk.reveal())

    def refused(self, credential: object) -> None:
        if isinstance(credential, AccessKey):
            self._keys.refused(credential)


def _token_expiry(response: requests.Response) -> float:
    """`token.expires_at` as epoch seconds; one hour from now when absent or unreadable."""
    try:
        return parse_expiry(response.json()["token"]["expires_at"])
    except (ValueError, KeyError, TypeError):
        return CLOCK.now() + 3600.0
