"""Hostile input: what a real API might serve that no clean JSON encoder would produce.

With `hostile=True` one extra service, whose id holds path characters, spaces and unicode, is
listed twice and serves records as exact bytes: a NUL in event_info, a lone UTF-16 surrogate
escape, a 1 MB text, undocumented extra fields and an occur_time written as an integral float,
beside ordinary events. With `hostile_answers=True`, three more services answer their events call
wrongly (more events than `limit`, a JSON array instead of an object, an HTML page with status
200): a correct extractor stops with a clear error naming the service, never a silent partial
load. /_sim/expected lists hostile records under "hostile" with the exact text served.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from pipelines.simulator import vocabulary as v
from pipelines.simulator.models import Event, ServiceInfo

HOSTILE_SERVICE_ID = "../hostile svc %2F 服务 ü?#"
BAD_ANSWERS = {
    "hostile-count-over-limit": "count_over_limit",
    "hostile-array-body": "array_body",
    "hostile-html-200": "html_200",
}
MEGABYTE = 1_048_576


@dataclass(frozen=True)
class RawRecord:
    """A record served exactly as `encoded` (bytes of one JSON value)."""

    sort_time: int
    kind: str
    encoded: bytes

    @property
    def event_type(self) -> object:
        return "normal"


def _raw(
    t: int, kind: str, event_info_json: bytes, extra: bytes = b"", time_json: bytes = b""
) -> RawRecord:
    occur = time_json or str(t).encode()
    body = b'{"event_type":"normal","event_info":%s,"occur_time":%s%s}' % (
        event_info_json,
        occur,
        extra,
    )
    return RawRecord(t, kind, body)


def hostile_records(start_ms: int) -> list[Event | RawRecord]:
    """The hostile service's log: ordinary events around the hostile records, in time order."""
    t = start_ms + 3 * 3_600_000
    model = "hostile (m) [1] 1.0.0"
    return [
        Event(t, v.NORMAL, v.START_DEPLOY),
        _raw(t + 1_000, "nul_in_event_info", orjson.dumps("preparing\x00environment")),
        _raw(t + 2_000, "lone_surrogate", b'"half a pair: \\ud800 end"'),
        _raw(t + 3_000, "megabyte_event_info", orjson.dumps("x" * MEGABYTE + "ü")),
        _raw(
            t + 4_000,
            "extra_fields",
            orjson.dumps(f"[{model}] pulling model image"),
            extra=b',"trace_id":"abc","nested":{"k":[1,2]}',
        ),
        _raw(
            t + 5_000,
            "integral_float_time",
            orjson.dumps(f"[{model}] pull image success"),
            time_json=b"%d.0" % (t + 5_000),
        ),
        Event(t + 6_000, v.ABNORMAL, f"[{model}] start model failed: exit code 1"),
    ]


def hostile_service(publish_at: int, service_id: str = HOSTILE_SERVICE_ID) -> ServiceInfo:
    return ServiceInfo(
        service_id=service_id,
        service_name="hostile-service",
        status="running",
        infer_type="real-time",
        owner="hostile",
        publish_at=publish_at,
        update_time=publish_at,
    )


def bad_answer_body(kind: str, service: ServiceInfo, limit: int, t: int) -> tuple[bytes, str]:
    """The wrong answer of a bad-answer service, and its content type."""
    if kind == "html_200":
        return b"<html><body><h1>Service Unavailable</h1></body></html>", "text/html"
    events = [
        {"event_type": "normal", "event_info": f"event {i}", "occur_time": t + i}
        for i in range(limit + 1)
    ]
    if kind == "array_body":
        return orjson.dumps(events[:1]), "application/json"
    body = {
        "service_name": service.service_name,
        "total_count": limit + 1,
        "service_id": service.service_id,
        "count": limit + 1,
        "events": events,
    }
    return orjson.dumps(body), "application/json"
