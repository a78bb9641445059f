"""HTTP client of the ModelArts inference-service API (requests, retries in one place)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipelines.source.auth import TokenProvider
from pipelines.source.errors import ModelArtsAPIError, ServiceNotFoundError, SourceError
from pipelines.source.models import EventPage, ServiceInfo, TimeWindow
from pipelines.source.stats import ExtractionStats

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

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_s, self.read_timeout_s)


def build_session(settings: HttpSettings) -> requests.Session:
    """A session whose adapter retries 429/5xx and dropped connections with jittered backoff."""
    retry = Retry(
        total=settings.max_retries,
        connect=settings.max_retries,
        read=settings.max_retries,
        status=settings.max_retries,
        other=0,
        allowed_methods=frozenset({"GET", "POST"}),
        status_forcelist=RETRYABLE_STATUSES,
        backoff_factor=settings.backoff_factor_s,
        backoff_max=settings.backoff_max_s,
        backoff_jitter=settings.backoff_factor_s,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(
        max_retries=retry, pool_connections=settings.pool_size, pool_maxsize=settings.pool_size
    )
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["Accept"] = "application/json"
    return session


class ModelArtsClient:
    """Lists services and pages their event logs. One instance is shared by all workers."""

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        auth: TokenProvider,
        session: requests.Session,
        settings: HttpSettings,
        stats: ExtractionStats | None = None,
    ):
        self._base = f"{endpoint.rstrip('/')}/v1/{quote(project_id, safe='')}"
        self._auth = auth
        self._session = session
        self._settings = settings
        self.stats = stats or ExtractionStats()

    def __repr__(self) -> str:
        return f"ModelArtsClient({self._base!r})"

    def list_services(self, limit: int = 1000) -> Iterator[ServiceInfo]:
        """Every service of the project, page by page (page-index offsets)."""
        offset, seen = 0, 0
        while True:
            body = self._get_json("/services", {"offset": offset, "limit": limit}, "list services")
            services = body.get("services") or []
            for raw in services:
                yield _service_info(raw)
            seen += len(services)
            total = int(body.get("total_count", seen))
            if not services or len(services) < limit or seen >= total:
                return
            offset += 1

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

    def _get_json(self, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        """GET with auth; refreshes an expired token once; retries unreadable bodies."""
        url = self._base + path
        refreshed = False
        body_attempts = 0
        while True:
            token = self._auth.token()
            self.stats.add(requests=1)
            try:
                response = self._session.get(
                    url,
                    params=params,
                    headers={"X-Auth-Token": token},
                    timeout=self._settings.timeout,
                )
                self._count_adapter_retries(response)
                if response.status_code == 401 and not refreshed:
                    refreshed = True
                    self._auth.invalidate(token)
                    continue
                if response.status_code != 200:
                    raise _api_error(response, what)
                parsed = orjson.loads(response.content)
                if not isinstance(parsed, dict):
                    raise orjson.JSONDecodeError("answer is not a JSON object", "", 0)
                return parsed
            except (requests.ConnectionError, requests.Timeout, orjson.JSONDecodeError) as exc:
                # Truncated or unreadable bodies happen after the adapter's retries: retry here.
                body_attempts += 1
                if body_attempts > self._settings.max_retries:
                    raise SourceError(
                        f"{what}: gave up after {body_attempts} attempts: {type(exc).__name__}"
                    ) from None
                self.stats.add(retries=1)
                log.warning("%s: %s, retrying", what, type(exc).__name__)

    def _count_adapter_retries(self, response: requests.Response) -> None:
        retries = getattr(response.raw, "retries", None)
        history = getattr(retries, "history", ()) or ()
        if history:
            self.stats.add(retries=len(history), requests=len(history))


def _api_error(response: requests.Response, what: str) -> ModelArtsAPIError:
    code = message = None
    try:
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            code = body.get("error_code")
            message = body.get("error_msg")
    except orjson.JSONDecodeError:
        message = f"non-JSON body ({response.headers.get('Content-Type', 'no content type')})"
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
