"""The served v2 generation: new-version services and their event records, which grow.

Records come from each service's timeline (records.py); a crash loop then keeps raising the
count and update_at of a record while clients page (`grow`), so a record moves in an update_at
listing. The store's current records are the truth at any moment (`expected_records`).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from typing import Any

from pipelines.simulator import vocabulary as v
from pipelines.simulator.models import Event, ServiceInfo
from pipelines.simulator.records import (
    ABNORMAL,
    WARNING,
    EventRecord,
    event_records,
    is_version_start,
    record_id,
    version_id,
)


def is_v2_service(api: str, index: int) -> bool:
    """Whether history service number `index` is a new-version service under `api`: in mixed
    mode services 2, 3, 6, 7, ... (both text families and both kinds of forced scenario land
    in each generation)."""
    if api == "v2":
        return True
    return api == "mixed" and (index // 2) % 2 == 1


@dataclass(frozen=True)
class MalformedRecord:
    """A record the API serves broken (tests of the quarantine); sorted by the times given."""

    create_at: int
    update_at: int
    raw: dict[str, Any]
    kind: str

    @property
    def record_id(self) -> str:
        return str(self.raw.get("id"))


Stored = EventRecord | MalformedRecord

# Records that repeat in a running service (restarts, scaling, waits): the ones that grow. The
# lifecycle texts of an attempt appear once in their version and never grow.
_GROWS = (" instance restarted unexpectedly", "scale service instances from ")


def _grows(record: EventRecord) -> bool:
    text = record.event_info
    return record.event_type == WARNING or text.endswith(_GROWS[0]) or text.startswith(_GROWS[1])


@dataclass
class V2Service:
    info: ServiceInfo
    version_count: int
    latest_version: str
    records: dict[str, Stored]


def listing_entry(service: V2Service, times_as_strings: bool = False) -> dict[str, Any]:
    """The service as GET /v2/{project_id}/services lists it (strings: the one-service call)."""
    info = service.info
    create_at: int | str = info.publish_at
    update_at: int | str = info.update_time
    if times_as_strings:
        create_at, update_at = str(create_at), str(update_at)
    return {
        "id": info.service_id,
        "name": info.service_name,
        "status": info.status.upper(),
        "version": f"1.0.{max(service.version_count - 1, 0)}",
        "version_count": service.version_count,
        "description": info.description,
        "type": "REALTIME",
        "deploy_type": "SINGLE",
        "user_name": info.owner,
        "workspace_id": info.workspace_id,
        "create_at": create_at,
        "update_at": update_at,
        "auth_type": "TOKEN",
        "task_type": "",
        "tags": [],
        "schedule": [],
        "frozen_infos": [],
    }


def _malformed(service_id: str, rng: random.Random, t: int, n: int) -> MalformedRecord:
    base = {
        "id": f"malformed-{service_id[:8]}-{n}",
        "service_id": service_id,
        "service_version_id": version_id(service_id, None),
        "event_count": 1,
        "event_type": "NORMAL",
        "event_info": "scale service instances from 1 to 2",
        "event_info_cn": "事件",
        "create_at": t,
        "update_at": t,
    }
    kind = rng.choice(("negative_count", "time_as_text", "no_event_info"))
    if kind == "negative_count":
        base["event_count"] = -3
    elif kind == "time_as_text":
        base["create_at"] = f"{t}ms"
    else:
        del base["event_info"]
    return MalformedRecord(t, t, base, kind)


class RecordStore:
    """Every v2 service's records behind one lock; listings are built per request."""

    def __init__(self, services: list[V2Service], time_filter: str, clock_ms: int) -> None:
        self._lock = threading.Lock()
        # None: the configured growth_rate; POST /_sim/growth sets another (0: counts stop)
        self.growth_rate: float | None = None
        self._services = {s.info.service_id: s for s in services}
        self.time_filter = time_filter
        # the time of the next grown occurrence: after everything the history holds
        self._clock = clock_ms
        self._grown = 0

    @classmethod
    def build(
        cls,
        services: list[tuple[ServiceInfo, list[Event]]],
        time_filter: str,
        clock_ms: int,
        malformed_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> RecordStore:
        built = []
        rng = rng or random.Random(0)
        for info, events in services:
            records: dict[str, Stored] = {}
            for r in event_records(info.service_id, events):
                records[r.record_id] = r
                if malformed_rate and rng.random() < malformed_rate:
                    bad = _malformed(info.service_id, rng, r.create_at, len(records))
                    records[bad.record_id] = bad
            starts = [e.occur_time for e in events if is_version_start(e)]
            latest = version_id(info.service_id, starts[-1] if starts else None)
            built.append(V2Service(info, len(starts), latest, records))
        return cls(built, time_filter, clock_ms)

    def service_ids(self) -> list[str]:
        with self._lock:
            return list(self._services)

    def services(self) -> list[dict[str, Any]]:
        with self._lock:
            return [listing_entry(s) for s in self._services.values()]

    def service(self, service_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._services.get(service_id)
            return None if found is None else listing_entry(found, times_as_strings=True)

    def record_count(self) -> int:
        with self._lock:
            return sum(len(s.records) for s in self._services.values())

    def listing(
        self,
        service_id: str,
        *,
        event_type: str | None,
        info_key: str | None,
        start_time: int | None,
        end_time: int | None,
        sort_key: str,
        descending: bool,
    ) -> list[dict[str, Any]] | None:
        """The service's records the query selects, in its order (None: unknown service).
        The time window filters on `time_filter`; ties keep the order of record ids."""
        with self._lock:
            service = self._services.get(service_id)
            if service is None:
                return None
            chosen: list[Stored] = []
            for record in service.records.values():
                t = getattr(record, self.time_filter)
                if start_time is not None and t < start_time:
                    continue
                if end_time is not None and t > end_time:
                    continue
                if isinstance(record, EventRecord):
                    if event_type is not None and record.event_type != event_type:
                        continue
                    if info_key is not None and info_key.lower() not in record.event_info.lower():
                        continue
                chosen.append(record)
        chosen.sort(key=lambda r: (getattr(r, sort_key), r.record_id), reverse=descending)
        return [r.to_dict() if isinstance(r, EventRecord) else r.raw for r in chosen]

    def grow(self, service_id: str, rng: random.Random) -> str | None:
        """One more occurrence of a repeating record of the service (or a new restart record
        in its latest version), at a time after every other: returns the record's id."""
        with self._lock:
            service = self._services.get(service_id)
            if service is None:
                return None
            self._clock += rng.randint(1, 1_000)
            self._grown += 1
            growing = [
                r for r in service.records.values() if isinstance(r, EventRecord) and _grows(r)
            ]
            if growing and rng.random() < 0.8:
                old = rng.choice(growing)
                new = replace(old, event_count=old.event_count + 1, update_at=self._clock)
            else:
                text = v.instance_restarted("crash loop")
                rid = record_id(service.latest_version, text)
                found = service.records.get(rid)
                if isinstance(found, EventRecord):
                    new = replace(found, event_count=found.event_count + 1, update_at=self._clock)
                else:
                    new = EventRecord(
                        rid, service_id, service.latest_version, ABNORMAL, text,
                        "[crash loop] 实例意外重启", 1, self._clock, self._clock,
                    )  # fmt: skip
            service.records[new.record_id] = new
            return new.record_id

    @property
    def grown(self) -> int:
        with self._lock:
            return self._grown

    def expected_records(
        self, start_time: int | None = None, end_time: int | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """The records now, whose create_at lies in the inclusive window, and the malformed
        ones: what a complete extraction of that window must hold at this moment."""
        with self._lock:
            records, malformed = [], []
            for service in self._services.values():
                for r in service.records.values():
                    if start_time is not None and r.create_at < start_time:
                        continue
                    if end_time is not None and r.create_at > end_time:
                        continue
                    if isinstance(r, EventRecord):
                        records.append(r.to_dict())
                    else:
                        malformed.append({"service_id": service.info.service_id,
                                          "kind": r.kind, "raw": r.raw})  # fmt: skip
            return {"records": records, "malformed": malformed}
