"""The served event logs: sorted records with their JSON encoded once, sliced into pages fast."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipelines.simulator.hostile import RawRecord
from pipelines.simulator.models import Event, ServiceInfo
from pipelines.simulator.tampering import MalformedRecord, StoredRecord


def _sort_time(record: StoredRecord) -> int:
    return record.occur_time if isinstance(record, Event) else record.sort_time


class _Encoder:
    """JSON of records; the head of an event (type and text) is encoded once per distinct text."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, str], bytes] = {}

    def encode(self, record: StoredRecord) -> bytes:
        if isinstance(record, RawRecord):
            return record.encoded
        if not isinstance(record, Event):
            return orjson.dumps(record.raw)
        key = (record.event_type, record.event_info)
        head = self._heads.get(key)
        if head is None:
            head = b'{"event_type":%s,"event_info":%s,"occur_time":' % (
                orjson.dumps(record.event_type),
                orjson.dumps(record.event_info),
            )
            self._heads[key] = head
        return b"%s%d}" % (head, record.occur_time)


@dataclass
class _View:
    """Sort times and encoded records of one service, all events or one event_type."""

    times: list[int]
    encoded: list[bytes]


@dataclass
class ServiceLog:
    service: ServiceInfo
    records: list[StoredRecord]
    times: list[int] = field(default_factory=list)
    views: dict[str | None, _View] = field(default_factory=dict)
    encoder: _Encoder = field(default_factory=_Encoder)

    def __post_init__(self) -> None:
        self.times = [_sort_time(r) for r in self.records]

    def view(self, event_type: str | None) -> _View:
        """Built on first use and kept until the records change (encode each record once)."""
        found = self.views.get(event_type)
        if found is not None:
            return found
        if event_type is None:
            encode = self.encoder.encode
            found = _View(self.times, [encode(r) for r in self.records])
        else:
            every = self.view(None)
            keep = [i for i, r in enumerate(self.records) if r.event_type == event_type]
            found = _View([every.times[i] for i in keep], [every.encoded[i] for i in keep])
        self.views[event_type] = found
        return found

    def insert(self, record: StoredRecord) -> None:
        """Insert after any record with the same time (ties keep insertion order)."""
        t = _sort_time(record)
        at = bisect_right(self.times, t)
        every = self.views.get(None)
        self.records.insert(at, record)
        self.times.insert(at, t)
        self.views = {}
        if every is not None:
            every.encoded.insert(at, self.encoder.encode(record))
            self.views[None] = _View(self.times, every.encoded)


@dataclass(frozen=True)
class Page:
    total_count: int
    chunks: list[bytes]


class EventStore:
    """All services' logs behind one lock; pages are slices of pre-encoded records."""

    def __init__(self, logs: list[ServiceLog]) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, ServiceLog] = {log.service.service_id: log for log in logs}

    def services(self) -> list[ServiceInfo]:
        with self._lock:
            return [log.service for log in self._logs.values()]

    def service(self, service_id: str) -> ServiceInfo | None:
        with self._lock:
            log = self._logs.get(service_id)
            return None if log is None else log.service

    def record_count(self) -> int:
        with self._lock:
            return sum(len(log.records) for log in self._logs.values())

    def page(
        self,
        service_id: str,
        event_type: str | None,
        start_time: int | None,
        end_time: int | None,
        first: int,
        limit: int,
        descending: bool,
    ) -> Page | None:
        """Records first..first+limit of the inclusive window, in order; None: unknown service."""
        with self._lock:
            log = self._logs.get(service_id)
            if log is None:
                return None
            view = log.view(event_type)
            lo = 0 if start_time is None else bisect_left(view.times, start_time)
            hi = len(view.times) if end_time is None else bisect_right(view.times, end_time)
            total = max(0, hi - lo)
            if descending:
                top = hi - first
                chunks = view.encoded[max(lo, top - limit) : top][::-1] if top > lo else []
            else:
                begin = lo + first
                chunks = view.encoded[begin : min(hi, begin + limit)] if begin < hi else []
            return Page(total, chunks)

    def append(self, service_id: str, records: list[StoredRecord]) -> bool:
        with self._lock:
            log = self._logs.get(service_id)
            if log is None:
                return False
            for record in records:
                log.insert(record)
            return True

    def delete(self, service_id: str) -> bool:
        with self._lock:
            return self._logs.pop(service_id, None) is not None

    def window(
        self, start_time: int | None, end_time: int | None
    ) -> list[tuple[str, list[StoredRecord]]]:
        """Each service's records in the inclusive window (a copy, for /_sim/expected)."""
        with self._lock:
            out = []
            for service_id, log in self._logs.items():
                lo = 0 if start_time is None else bisect_left(log.times, start_time)
                hi = len(log.times) if end_time is None else bisect_right(log.times, end_time)
                out.append((service_id, log.records[lo:hi]))
            return out


def expected_events(
    windows: list[tuple[str, list[StoredRecord]]],
) -> dict[str, list[dict[str, Any]]]:
    """Valid events deduplicated on (service_id, occur_time, event_info), malformed ones, and
    hostile records with the exact text served (see hostile.py)."""
    events: list[dict[str, Any]] = []
    malformed: list[dict[str, Any]] = []
    hostile: list[dict[str, Any]] = []
    for service_id, records in windows:
        seen: set[tuple[int, str]] = set()
        for record in records:
            if isinstance(record, RawRecord):
                hostile.append(
                    {
                        "service_id": service_id,
                        "kind": record.kind,
                        "sort_time": record.sort_time,
                        "served": record.encoded.decode("utf-8"),
                    }
                )
                continue
            if isinstance(record, MalformedRecord):
                malformed.append(
                    {
                        "service_id": service_id,
                        "raw": record.raw,
                        "kind": record.kind,
                        "sort_time": record.sort_time,
                    }
                )
                continue
            key = (record.occur_time, record.event_info)
            if key in seen:
                continue
            seen.add(key)
            events.append(
                {
                    "service_id": service_id,
                    "occur_time": record.occur_time,
                    "event_type": record.event_type,
                    "event_info": record.event_info,
                }
            )
    return {"events": events, "malformed": malformed, "hostile": hostile}
