"""Access keys (AK/SK) and where they come from: the environment, the SDK's credentials file, or
the ECS metadata service (temporary keys of an IAM agency), with the SDK's names.

Renewable credentials (temporary keys here, IAM tokens in auth.py) share one cache, `Renewing`:
one fetch at a time across worker threads, a refresh before expiry, and compare-and-invalidate
when the API refuses one, learning from it when the server's real life is shorter than the
advertised one.
"""

from __future__ import annotations

import configparser
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

import requests

from pipelines.settings import SDK_CREDENTIALS_FILE, ConfigError
from pipelines.source.clock import CLOCK
from pipelines.source.errors import AuthenticationError, TransientHTTPError
from pipelines.source.retrying import RetryBudget, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CREDENTIALS_FILE = Path("~/.huaweicloud/credentials")
DEFAULT_METADATA_ENDPOINT = "http://169.254.169.254"
METADATA_TOKEN_PATH = "/meta-data/latest/api/token"
METADATA_KEYS_PATH = "/openstack/latest/securitykey"
METADATA_TOKEN_TTL_S = 6 * 3600  # the SDK's


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


@dataclass(frozen=True, eq=False)
class AccessKey:
    """An AK/SK pair; temporary keys also carry a security token. Compared by identity: a
    refusal invalidates exactly the keys that were sent."""

    ak: str
    sk: Secret
    security_token: Secret | None = None

    def __repr__(self) -> str:
        return f"AccessKey(ak={mask(self.ak)!r}, sk=***)"


def mask(ak: str) -> str:
    """An access key id as logs and `status` show it: its first 4 characters."""
    return ak[:4] + "…" if len(ak) > 4 else "…"


class Renewing(Generic[T]):
    """A credential fetched by `fetch` (returning it and its expiry, epoch s), reused by every
    thread until shortly before it expires.

    It is refreshed `margin_s` before its advertised expiry, or after 80% of its life when that
    is shorter. When the API refuses the credential in use (`refused`), it is dropped (only that
    one: if another thread already replaced it, nothing happens) and, if it died younger than
    advertised, later ones are refreshed at 3/4 of the shortest life seen.
    """

    MIN_LEARNED_LIFE_S = 1.0  # a refusal sooner than this is not about expiry

    def __init__(self, fetch: Callable[[], tuple[T, float]], what: str, margin_s: float):
        self._fetch = fetch
        self._what = what
        self._margin_s = margin_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._issued_at = 0.0
        self._refresh_at = 0.0
        self._advertised_life = math.inf
        self.observed_life_s: float | None = None
        self.fetched = 0

    def get(self) -> T:
        # One lock: while one thread fetches, the others wait for its result.
        with self._lock:
            # the gateway's clock: expiry times are stated in it (clock.py)
            if self._value is None or CLOCK.now() >= self._refresh_at:
                issued = CLOCK.now()
                value, expires_at = self._fetch()
                life = max(0.0, expires_at - issued)
                refresh_in = life - min(self._margin_s, 0.2 * life)
                if self.observed_life_s is not None:
                    refresh_in = min(refresh_in, 0.75 * self.observed_life_s)
                self._value, self._issued_at = value, issued
                self._advertised_life = life
                self._refresh_at = issued + refresh_in
                self.fetched += 1
            return self._value

    def refused(self, value: T) -> None:
        """The API refused `value`: drop it if it is still the one in use."""
        with self._lock:
            if self._value is None or value is not self._value:
                return  # already replaced by another thread: resend with the current one
            lived = CLOCK.now() - self._issued_at
            self._value = None
            if self.MIN_LEARNED_LIFE_S <= lived < 0.8 * self._advertised_life:
                shortest = min(lived, self.observed_life_s or math.inf)
                if self.observed_life_s is None:
                    log.warning(
                        "%s was refused after %.1f s although it was to last %.0f s; later ones "
                        "are refreshed after %.1f s",
                        self._what,
                        lived,
                        self._advertised_life,
                        0.75 * shortest,
                    )
                self.observed_life_s = shortest


@dataclass(frozen=True)
class FileCredentials:
    """Section [basic] of the SDK's credentials file (INI)."""

    path: Path
    access_key: str | None
    secret_key: str | None
    security_token: str | None
    project_id: str | None


def credentials_file_path(explicit: str | None) -> tuple[Path, bool]:
    """The credentials file to read and whether it was named explicitly."""
    if explicit:
        return Path(explicit).expanduser(), True
    return DEFAULT_CREDENTIALS_FILE.expanduser(), False


def read_credentials_file(path: Path, explicit: bool) -> FileCredentials | None:
    """Section [basic] of the credentials file; None when the default file does not exist.

    A file named by HUAWEICLOUD_SDK_CREDENTIALS_FILE that cannot be read, or any file without
    both `ak` and `sk` in [basic], is a ConfigError (never quoting a value).
    """
    where = f"{path} ({SDK_CREDENTIALS_FILE})" if explicit else str(path)
    if not explicit and not path.exists():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the credentials file {where}: {exc.strerror or type(exc).__name__}"
        ) from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"the credentials file {where} is not an INI file: {type(exc).__name__}"
        ) from None
    if not parser.has_section("basic"):
        raise ConfigError(f"the credentials file {where} has no [basic] section")
    section = parser["basic"]
    found = FileCredentials(
        path,
        section.get("ak") or None,
        section.get("sk") or None,
        section.get("security_token") or None,
        section.get("project_id") or None,
    )
    if not found.access_key or not found.secret_key:
        missing = "sk" if found.access_key else "ak"
        raise ConfigError(f"the credentials file {where} has no {missing} in section [basic]")
    return found


class MetadataKeys:
    """Temporary AK/SK of the machine's IAM agency, from the ECS metadata service; refreshed
    before they expire and shared by all threads (`Renewing`)."""

    def __init__(
        self,
        endpoint: str,
        session: requests.Session,
        *,
        timeout: tuple[float, float] = (3.0, 10.0),
        margin_s: float = 40 * 60,  # the SDK refreshes 40 min before expiry
        policy: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
    ):
        self.endpoint = endpoint.rstrip("/")
        self._session = session
        self._timeout = timeout
        self._policy = policy or RetryPolicy()
        self._budget = budget or RetryBudget(None)
        self._metadata_token: str | None = None
        self.keys = Renewing(self._fetch_with_retries, "temporary AK/SK", margin_s)

    def __repr__(self) -> str:
        return f"MetadataKeys({self.endpoint!r})"

    def current(self) -> AccessKey:
        return self.keys.get()

    def refused(self, key: AccessKey) -> None:
        self.keys.refused(key)

    def fetch_once(self) -> AccessKey:
        """One fetch without retries (the pre-flight check)."""
        return self._fetch()[0]

    def _fetch_with_retries(self) -> tuple[AccessKey, float]:
        return call_with_retries(
            self._fetch, f"temporary AK/SK from {self.endpoint}", self._policy, self._budget
        )

    def _fetch(self) -> tuple[AccessKey, float]:
        if self._metadata_token is None:
            self._metadata_token = self._session_token()
        response = self._get_keys()
        if response.status_code == 401:  # the session token expired: one new one
            self._metadata_token = self._session_token()
            response = self._get_keys()
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientHTTPError(
                response.status_code, None, None, f"metadata service {self.endpoint}"
            )
        if response.status_code != 200:
            raise AuthenticationError(
                f"the ECS metadata service at {self.endpoint} gave no temporary AK/SK "
                f"(HTTP {response.status_code}): is an IAM agency attached to this machine?"
            )
        try:
            credential = response.json()["credential"]
            key = AccessKey(
                str(credential["access"]),
                Secret(str(credential["secret"])),
                Secret(str(credential["securitytoken"])),
            )
            expires_at = parse_expiry(str(credential["expires_at"]))
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                f"the ECS metadata service at {self.endpoint} answered without a credential"
            ) from None
        log.info(
            "temporary AK/SK %s from %s, expiring %s",
            mask(key.ak),
            self.endpoint,
            credential["expires_at"],
        )
        return key, expires_at

    def _session_token(self) -> str | None:
        response = self._session.put(
            self.endpoint + METADATA_TOKEN_PATH,
            headers={"X-Metadata-Token-Ttl-Seconds": str(METADATA_TOKEN_TTL_S)},
            timeout=self._timeout,
        )
        # Older metadata services have no session tokens (the SDK goes on without one).
        return response.text if response.status_code == 200 else None

    def _get_keys(self) -> requests.Response:
        headers = {"X-Metadata-Token": self._metadata_token} if self._metadata_token else {}
        return self._session.get(
            self.endpoint + METADATA_KEYS_PATH, headers=headers, timeout=self._timeout
        )


def parse_expiry(text: str) -> float:
    """An ISO-8601 UTC time (`2026-12-04T10:11:12.000000Z`) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
