"""HTTP client of the ModelArts inference-service API (requests, retries in one place)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipelines.source import signer
from pipelines.source.auth import RequestAuth
from pipelines.source.clock import CLOCK, ClockSkewError, gateway_time, signature_expired
from pipelines.source.errors import (
    AuthenticationError,
    CredentialRefusedError,
    ModelArtsAPIError,
    NotJSONBodyError,
    PagingError,
    ServiceNotFoundError,
    SourceError,
    ThrottledError,
    TransientHTTPError,
)
from pipelines.source.limiter import RateLimiter, parse_quota
from pipelines.source.models import EventPage, ServiceInfo
from pipelines.source.retrying import RetryBudget, RetryPolicy, call_with_retries
from pipelines.source.stats import ExtractionStats
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_retries: int = 6
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 30.0
    pool_size: int = 8
    # TLS certificates are always verified; a path names a CA bundle to verify them against.
    ca_bundle: str | None = None

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_s, self.read_timeout_s)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_factor_s, self.backoff_max_s)


class _Session(requests.Session):
    """A session whose configured CA bundle is not overridden by REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE from the environment (plain requests lets those win over `session.verify`)."""

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str):
            merged["verify"] = self.verify
        return merged


def build_session(settings: HttpSettings) -> requests.Session:
    """A keep-alive session with a connection pool of `pool_size` (one per worker).

    The adapter itself never retries: every retry goes through `call_with_retries`, so each one
    is counted, backed off and taken from the run's retry budget.
    """
    adapter = HTTPAdapter(
        max_retries=Retry(total=0, redirect=0, raise_on_status=False),
        pool_connections=settings.pool_size,
        pool_maxsize=settings.pool_size,
        pool_block=True,
    )
    session = _Session()
    session.verify = settings.ca_bundle or True  # never False: there is no switch to turn it off
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["Accept"] = "application/json"
    return session


# 10 M services at the listing's page size of 1000: far beyond any project.
MAX_LISTING_PAGES = 10_000


class ModelArtsClient:
    """Lists services and pages their event logs. One instance is shared by all workers."""

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        auth: RequestAuth,
        session: requests.Session,
        settings: HttpSettings,
        stats: ExtractionStats | None = None,
        *,
        budget: RetryBudget | None = None,
        limiter: RateLimiter | None = None,
    ):
        self._base = f"{endpoint.rstrip('/')}/v1/{quote(project_id, safe='')}"
        parts = urlsplit(self._base)
        self._host = parts.netloc  # what is signed is what requests sends as Host
        self._path_prefix = parts.path
        # the new-version calls (/v2/{project_id}/...): source/records.py pages them
        endpoint_path = urlsplit(endpoint.rstrip("/")).path
        self._v2_path_prefix = f"{endpoint_path}/v2/{quote(project_id, safe='')}"
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._auth = auth
        self._session = session
        self._settings = settings
        self.stats = stats or ExtractionStats()
        self.budget = budget or RetryBudget(None)
        self.limiter = limiter or RateLimiter(0)

    def __repr__(self) -> str:
        return f"ModelArtsClient({self._base!r})"

    def list_services(self, limit: int = 1000) -> Iterator[ServiceInfo]:
        """Every service of the project once, page by page (page-index offsets); an id the
        listing repeats is fetched once, not twice."""
        offset, seen = 0, 0
        listed: set[str] = set()
        while True:
            body = self._get_json("/services", {"offset": offset, "limit": limit}, "list services")
            services = body.get("services") or []
            for raw in services:
                info = _service_info(raw)
                if info.service_id in listed:
                    log.warning("the listing names service %s twice; fetched once", info.service_id)
                    continue
                listed.add(info.service_id)
                yield info
            seen += len(services)
            total = int(body.get("total_count", seen))
            if not services or len(services) < limit or seen >= total:
                return
            offset += 1
            if offset >= MAX_LISTING_PAGES:  # an API that never says the listing ended
                raise PagingError(f"the service listing did not end after {offset} pages")

    def fetch_events_page(
        self, service_id: str, query: TimeWindow, offset: int, limit: int
    ) -> EventPage:
        """One page of a service's events in ascending order of occur_time.

        `query` is sent as start_time=query.start_ms and end_time=query.end_ms - 1 (the API's
        window ends are treated as inclusive).
        """
        params = {
            "start_time": query.start_ms,
            "end_time": query.end_ms - 1,
            "offset": offset,
            "limit": limit,
            "sort_by": "occur_time",
            "order": "asc",
        }
        path = f"/services/{quote(service_id, safe='')}/events"
        body = self._get_json(path, params, f"events of service {service_id}")
        events = body.get("events")
        if not isinstance(events, list):
            raise SourceError(f"events of service {service_id}: answer has no 'events' list")
        return EventPage(
            service_id=service_id,
            offset=offset,
            limit=limit,
            total_count=_as_int(body.get("total_count"), default=len(events)),
            count=_as_int(body.get("count"), default=len(events)),
            events=events,
        )

    def get_v2_json(self, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        """GET /v2/{project_id}{path} (a new-version call) with this client's auth, retries,
        rate limit and counters; the answer must be a JSON object."""
        return self._get_json(self._v2_path_prefix + path, params, what, prefixed=True)

    def _get_json(
        self, path: str, params: dict[str, Any], what: str, *, prefixed: bool = False
    ) -> dict[str, Any]:
        """GET with auth and retries (see retrying.py); the answer must be a JSON object.
        `path` is under /v1/{project_id} unless `prefixed` (then it is the whole path)."""
        if not prefixed:
            path = self._path_prefix + path
        return call_with_retries(
            lambda: self._get_json_once(path, params, what),
            what,
            self._settings.retry_policy,
            self.budget,
            on_retry=lambda: self.stats.add(retries=1),
            on_throttled=self._throttled,
        )

    def _throttled(self, exc: ThrottledError) -> None:
        """A throttling answer: the shared limiter slows every worker; counted, not retried
        from the budget."""
        self.stats.add(throttled=1)
        pause = self.limiter.throttled(exc.retry_after_s, exc.quota)
        log.info("%s throttled (%s); every worker waits %.1f s", exc.what, exc, pause)

    def _get_json_once(self, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        """One attempt. A 401 drops exactly the credential that was sent and sends the request
        again at once with a fresh one (or freshly signed); a second 401 is retried with backoff
        from the run's budget when the credential can be renewed, else it fails naming the
        credential's source."""
        credential, response = self._send(path, params)
        if response.status_code == 401 and self._clock_corrected(response, what):
            credential, response = self._send(path, params)  # signed with the gateway's time
        if response.status_code == 401:
            self._refused(credential)
            credential, response = self._send(path, params)
            if response.status_code == 401:
                self._refused(credential)
                code, message = _error_fields(response)
                if self._auth.renewable:
                    raise CredentialRefusedError(401, code, message, what)
                raise AuthenticationError(
                    f"{what}: the API refused {self._auth.source}: HTTP 401 {code or '-'}: "
                    f"{message or '(no message)'}"
                )
        if response.status_code == 429:
            code, message = _error_fields(response)
            quota = parse_quota(message)
            raise ThrottledError(code, message, what, _retry_after_s(response), quota)
        if response.status_code in RETRYABLE_STATUSES:
            code, message = _error_fields(response)
            raise TransientHTTPError(
                response.status_code, code, message, what, _retry_after_s(response)
            )
        if response.status_code != 200:
            raise _api_error(response, what)
        try:
            parsed = parse_json(response.content)
        except orjson.JSONDecodeError:
            raise NotJSONBodyError(
                f"{what}: body is not JSON ({response.headers.get('Content-Type', 'no type')}, "
                f"{len(response.content)} bytes)"
            ) from None
        if not isinstance(parsed, dict):
            # Well-formed but the wrong shape: asking again would not change it.
            raise SourceError(f"{what}: answer is a JSON {type(parsed).__name__}, not an object")
        return parsed

    def _clock_corrected(self, response: requests.Response, what: str) -> bool:
        """A 401 for a signature time too far from the gateway's: the process's clock takes
        the gateway's time (its message's `server time`, else its Date header); True when the
        request should be signed and sent again."""
        code, message = _error_fields(response)
        if not signature_expired(code, message):
            return False
        server_time = gateway_time(message, response.headers.get("Date"))
        if server_time is None:
            return False
        try:
            CLOCK.learn(server_time)
        except ClockSkewError as exc:
            raise AuthenticationError(f"{what}: signature expired: {exc}") from None
        return True

    def _refused(self, credential: object) -> None:
        self.stats.add(token_refreshes=1)
        self._auth.refused(credential)

    def _send(self, path: str, params: dict[str, Any]) -> tuple[object, requests.Response]:
        """One send, authorized (signed) afresh after the rate limiter let it go; the query is
        sent in the canonical form that was signed."""
        self.limiter.acquire()
        pairs = list(params.items())
        credential, headers = self._auth.authorize("GET", self._host, path, pairs)
        self.stats.add(requests=1)
        url = f"{self._origin}{path}?{signer.canonical_query(pairs)}"
        sent = time.perf_counter()
        response = self._session.get(url, headers=headers, timeout=self._settings.timeout)
        if response.status_code != 429:
            self.limiter.answered(time.perf_counter() - sent)
        return credential, response


def parse_json(content: bytes) -> Any:
    """orjson, or the standard library where orjson refuses valid JSON that Python can hold:
    lone surrogate escapes (`"\\ud800"`), which validation then replaces. A body that is not JSON
    at all (truncated, an HTML page) raises orjson.JSONDecodeError: retryable."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        try:
            return json.loads(content.decode("utf-8", errors="replace"))
        except ValueError:
            raise orjson.JSONDecodeError("body is not JSON", "", 0) from None


def _error_fields(response: requests.Response) -> tuple[str | None, str | None]:
    """error_code and error_msg of an error answer; a non-JSON body is described, not quoted."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, f"non-JSON body ({response.headers.get('Content-Type', 'no content type')})"
    if not isinstance(body, dict):
        return None, None
    code, message = body.get("error_code"), body.get("error_msg")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def _retry_after_s(response: requests.Response) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare on this API and falls back to backoff)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _api_error(response: requests.Response, what: str) -> ModelArtsAPIError:
    code, message = _error_fields(response)
    if response.status_code == 403:
        message = (
            f"{message or '(no message)'} (the credentials need the IAM permissions "
            "modelarts:service:list and modelarts:service:getEvents in this project)"
        )
    cls = ServiceNotFoundError if code == "ModelArts.3502" else ModelArtsAPIError
    return cls(response.status_code, code, message, what)


def _as_int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _service_info(raw: dict[str, Any]) -> ServiceInfo:
    publish_at = raw.get("publish_at")
    return ServiceInfo(
        service_id=str(raw["service_id"]),
        service_name=raw.get("service_name"),
        status=raw.get("status"),
        infer_type=raw.get("infer_type"),
        owner=raw.get("owner"),
        publish_at_ms=publish_at if isinstance(publish_at, int) else None,
        raw=raw,
    )
