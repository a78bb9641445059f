"""Extract the v2 generation: new-version services and their event records.

Why paging cannot miss a record (README, "The two API generations"): each service's records are
asked for with `start_time` = the range's start, no `end_time`, sorted by `create_at` ascending.
`create_at` never changes, so a record never moves in that order; a record can only enter the
listing (a new one, or an old one whose update_at grows past `start_time` when the API filters on
update_at), never leave it (update_at only grows and no end bounds it). An entry shifts the
later records to higher offsets, so a page may repeat a record of the page before, never skip
one: a record at position p when page k = [k*L, (k+1)*L) is asked for moves only up, and paging
stops only once (k+1)*L >= the total of that answer, which holds p, so some page held it.
Whichever time the window filters on, the set holds every record whose create_at is at or after
the range's start. Repeats are folded by record id (the later sighting wins: counts only grow),
and the distinct ids must reach the total of the first page, or the service is paged again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pipelines.source.client import ModelArtsClient
from pipelines.source.errors import PagingError, ServiceNotFoundError, SourceError
from pipelines.source.models import RejectedEvent
from pipelines.source.validation import MAX_OCCUR_TIME_MS, MIN_OCCUR_TIME_MS, repair_text

log = logging.getLogger(__name__)

V2_PAGE_LIMIT = 500  # the API's largest page: the fewest requests
V2_EVENT_TYPES = frozenset({"NORMAL", "ABNORMAL", "WARNING"})
MAX_V2_PAGES = 100_000
# Pagings of one service that may come up short of the first page's total before giving up.
MAX_RELISTS = 3


@dataclass(frozen=True, slots=True)
class V2ServiceInfo:
    """One entry of GET /v2/{project_id}/services."""

    service_id: str
    service_name: str | None
    status: str | None
    version: str | None
    version_count: int | None
    service_type: str | None
    owner: str | None  # user_name
    create_at_ms: int | None
    update_at_ms: int | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One validated v2 event record."""

    record_id: str
    service_id: str
    service_version_id: str
    event_type: str
    event_info: str
    event_info_cn: str | None
    event_count: int
    create_at: int
    update_at: int


@dataclass
class ServiceRecords:
    """What the extraction of one service found: its records by id, and its rejects."""

    service_id: str
    records: dict[str, EventRecord] = field(default_factory=dict)
    rejected: list[RejectedEvent] = field(default_factory=list)
    missing: bool = False  # deleted since it was listed


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)  # the one-service call answers times as strings
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def v2_service_info(raw: dict[str, Any]) -> V2ServiceInfo:
    return V2ServiceInfo(
        service_id=str(raw["id"]),
        service_name=_text(raw.get("name")),
        status=_text(raw.get("status")),
        version=_text(raw.get("version")),
        version_count=_int(raw.get("version_count")),
        service_type=_text(raw.get("type")),
        owner=_text(raw.get("user_name")),
        create_at_ms=_int(raw.get("create_at")),
        update_at_ms=_int(raw.get("update_at")),
        raw=raw,
    )


def list_v2_services(client: ModelArtsClient) -> Iterator[V2ServiceInfo]:
    """Every new-version service once (create_at ascending, 500 a page): a project without any
    costs one call."""
    offset, listed = 0, set()
    while True:
        body = client.get_v2_json(
            "/services",
            {"limit": V2_PAGE_LIMIT, "offset": offset, "sort_key": "create_at", "sort_dir": "ASC"},
            "list v2 services",
        )
        data = body.get("data")
        if not isinstance(data, list):
            raise SourceError("list v2 services: answer has no 'data' list")
        for raw in data:
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                raise SourceError("list v2 services: an entry has no string 'id'")
            if raw["id"] in listed:
                continue
            listed.add(raw["id"])
            yield v2_service_info(raw)
        total = _int(body.get("total"))
        offset += V2_PAGE_LIMIT
        if not data or total is None or offset >= total:
            return
        if offset >= MAX_V2_PAGES * V2_PAGE_LIMIT:
            raise PagingError(f"the v2 service listing did not end after {MAX_V2_PAGES} pages")


def validate_record(service_id: str, raw: Any) -> EventRecord | RejectedEvent:
    """A record as the loader takes it, or the reason it cannot be (kept in quarantine)."""
    if not isinstance(raw, dict):
        return RejectedEvent(service_id, raw, f"record is a {type(raw).__name__}, not an object")
    for name in ("id", "service_version_id", "event_info"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            return RejectedEvent(service_id, raw, f"{name} missing or not a string")
    owner = raw.get("service_id")
    if owner is not None and owner != service_id:
        return RejectedEvent(service_id, raw, "service_id is not the service asked for")
    count = raw.get("event_count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return RejectedEvent(service_id, raw, "event_count is not a non-negative integer")
    times = {}
    for name in ("create_at", "update_at"):
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            return RejectedEvent(service_id, raw, f"{name} is not an integer")
        if not MIN_OCCUR_TIME_MS <= value < MAX_OCCUR_TIME_MS:
            return RejectedEvent(service_id, raw, f"{name} outside 2000-01-01..2100-01-01")
        times[name] = value
    if times["update_at"] < times["create_at"]:
        return RejectedEvent(service_id, raw, "update_at before create_at")
    event_type = raw.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return RejectedEvent(service_id, raw, "event_type missing or not a string")
    info, _ = repair_text(raw["event_info"])
    cn = raw.get("event_info_cn")
    return EventRecord(
        record_id=raw["id"],
        service_id=service_id,
        service_version_id=raw["service_version_id"],
        event_type=event_type,
        event_info=info,
        event_info_cn=repair_text(cn)[0] if isinstance(cn, str) else None,
        event_count=count,
        create_at=times["create_at"],
        update_at=times["update_at"],
    )


def _later(a: EventRecord, b: EventRecord) -> EventRecord:
    """Of two sightings of one record, the later one (counts and update_at only grow)."""
    return b if (b.event_count, b.update_at) >= (a.event_count, a.update_at) else a


def fetch_service_records(
    client: ModelArtsClient, service_id: str, since_ms: int, limit: int = V2_PAGE_LIMIT
) -> ServiceRecords:
    """Every record of the service with create_at >= since_ms (and, where the API filters on
    update_at, the older ones updated since), exactly once, however records move meanwhile
    (see the module's docstring)."""
    for attempt in range(1, MAX_RELISTS + 1):
        found = _page_service(client, service_id, since_ms, limit)
        if found.missing or found.first_total is None:
            return found.result
        distinct = found.distinct + len(found.result.rejected)
        if distinct >= found.first_total:
            return found.result
        # fewer than were there when paging began: records left the listing (an API that
        # expires or reorders them); page again rather than load a hole
        log.warning(
            "v2 records of %s: %d distinct of %d listed (pass %d); paging again",
            service_id, distinct, found.first_total, attempt,
        )  # fmt: skip
    raise PagingError(
        f"v2 records of service {service_id}: {MAX_RELISTS} pagings each came up short of the "
        "total the listing announced"
    )


@dataclass
class _Paged:
    result: ServiceRecords
    first_total: int | None
    missing: bool = False
    distinct: int = 0  # valid record ids seen, kept or not


def _page_service(client: ModelArtsClient, service_id: str, since_ms: int, limit: int) -> _Paged:
    out = ServiceRecords(service_id)
    first_total: int | None = None
    rejected_seen: set[str] = set()
    ids: set[str] = set()
    path = f"/services/{quote(service_id, safe='')}/events"
    for page in range(MAX_V2_PAGES):
        params = {
            "start_time": since_ms,
            "sort_key": "create_at",
            "sort_dir": "ASC",
            "limit": limit,
            "offset": page * limit,
        }
        try:
            body = client.get_v2_json(path, params, f"v2 events of service {service_id}")
        except ServiceNotFoundError:
            log.warning("v2 service %s was deleted since it was listed; skipped", service_id)
            client.stats.add(services_missing=1)
            out.missing = True
            return _Paged(out, None, missing=True)
        data, total = body.get("data"), _int(body.get("total"))
        if not isinstance(data, list) or total is None:
            raise SourceError(f"v2 events of service {service_id}: no 'data' list or 'total'")
        if first_total is None:
            first_total = total
        client.stats.add(pages=1, fetched=len(data))
        for raw in data:
            checked = validate_record(service_id, raw)
            if isinstance(checked, RejectedEvent):
                key = repr(raw)
                if key not in rejected_seen:  # a repeat across a page edge is one reject
                    rejected_seen.add(key)
                    out.rejected.append(checked)
                continue
            ids.add(checked.record_id)
            if checked.create_at < since_ms and checked.update_at < since_ms:
                client.stats.add(out_of_window=1)  # an API whose window reads otherwise
                continue
            known = out.records.get(checked.record_id)
            out.records[checked.record_id] = checked if known is None else _later(known, checked)
        # the stop rule of the module's docstring: this answer's total is within this page
        if not data or (page + 1) * limit >= total:
            return _Paged(out, first_total, distinct=len(ids))
    raise PagingError(f"v2 events of service {service_id}: over {MAX_V2_PAGES} pages")


def extract_records(
    client: ModelArtsClient,
    service_ids: Sequence[str],
    since_ms: int,
    workers: int = 4,
    limit: int = V2_PAGE_LIMIT,
) -> list[ServiceRecords]:
    """Every listed v2 service's records since `since_ms`, `workers` services at a time, pages
    of `limit` (at most the API's 500). A service deleted since listing is skipped
    (services_missing); any other error is raised."""
    limit = max(1, min(limit, V2_PAGE_LIMIT))
    client.stats.add(services=len(service_ids))
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="extract-v2") as pool:
        found = list(
            pool.map(lambda sid: fetch_service_records(client, sid, since_ms, limit), service_ids)
        )
    client.stats.add(quarantined=sum(len(f.rejected) for f in found))
    return found
