"""A service's event timeline as the v2 API answers it: event records, one per repeated event of
a service version (../docs: README "The two API generations").

A v2 record aggregates the occurrences of one event_info in one service version: event_count is
how often it happened, create_at the first and update_at the last occurrence. Each deployment
start opens a new service version (our reading of the new-version service model: the attempt
derivation lives here, in `version_starts`, so that it can change in one place). Events before the
first start of the timeline belong to the version the service already ran.

Pure functions of the timeline: the same events give the same records, ids included, and the
records as of a time are the records of the events up to that time (cutting composes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from pipelines.simulator import families
from pipelines.simulator import vocabulary as v
from pipelines.simulator.models import Event

NORMAL: Final = "NORMAL"
ABNORMAL: Final = "ABNORMAL"
WARNING: Final = "WARNING"
EVENT_TYPES: Final = (NORMAL, ABNORMAL, WARNING)

# Fixed namespace: record and version ids are uuid5 names under it (deterministic, id-shaped).
_NAMESPACE: Final = uuid.UUID("6f1d2c1e-7a57-4c2b-9a0e-0b5e1e2a2c28")
_STARTS: Final = frozenset({v.START_DEPLOY, families.CONSOLE_START})
# "Insufficient resources. Wait until ..." and its like: a wait, not a failure.
_WARNING_PREFIXES: Final = ("insufficient resources. wait",)

# The Chinese texts of the fixed English ones; others get a generic translation of their shape.
_CN: Final = {
    v.START_DEPLOY: "开始部署服务",
    families.CONSOLE_START: "服务开始部署。",
    v.PREPARING_ENVIRONMENT: "准备环境",
    v.SERVICE_RUNNING: "服务运行中",
    v.STOP_SERVICE: "停止服务",
    v.SERVICE_STOPPED: "服务已停止",
    v.UPDATE_CONFIGURATION: "更新服务配置",
    families.CONSOLE_WAITING: "资源不足，等待空闲资源充足。",
}


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One v2 event record, fields as GET /v2/{project_id}/services/{id}/events answers them."""

    record_id: str
    service_id: str
    service_version_id: str
    event_type: str  # NORMAL | ABNORMAL | WARNING
    event_info: str
    event_info_cn: str
    event_count: int
    create_at: int
    update_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "service_id": self.service_id,
            "service_version_id": self.service_version_id,
            "event_count": self.event_count,
            "event_type": self.event_type,
            "event_info": self.event_info,
            "event_info_cn": self.event_info_cn,
            "create_at": self.create_at,
            "update_at": self.update_at,
        }


def is_version_start(event: Event) -> bool:
    """Whether this event opens a new service version (a deployment start, in either family)."""
    return event.event_info in _STARTS


def version_id(service_id: str, start_ms: int | None) -> str:
    """The id of the version opened at start_ms (None: the version running before the first
    start of the timeline)."""
    opened = "initial" if start_ms is None else str(start_ms)
    return str(uuid.uuid5(_NAMESPACE, f"version/{service_id}/{opened}"))


def record_id(service_version_id: str, event_info: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"record/{service_version_id}/{event_info}"))


def v2_event_type(event: Event) -> str:
    """The upper-case v2 type: WARNING for waits, else the v1 type upper-cased."""
    if event.event_info.lower().startswith(_WARNING_PREFIXES):
        return WARNING
    return ABNORMAL if event.event_type == v.ABNORMAL else NORMAL


def chinese_text(event_info: str) -> str:
    """The event_info_cn of a text: a fixed translation, else the English wrapped in a Chinese
    frame (the analytics read event_info; this only has to be a Chinese text, stable per text)."""
    fixed = _CN.get(event_info)
    if fixed is not None:
        return fixed
    return f"事件：{event_info}"


def event_records(
    service_id: str, events: Iterable[Event], as_of_ms: int | None = None
) -> list[EventRecord]:
    """The records of a service whose events (in time order, as the simulator generates them)
    are `events`, seen with only the occurrences at or before as_of_ms (None: all).

    Ordered by first occurrence (ties in timeline order). Events must be in time order: a
    version is opened by the start that precedes the event in the timeline.
    """
    current = version_id(service_id, None)
    # (version, text) -> [type, count, first, last], insertion-ordered by first occurrence
    found: dict[tuple[str, str], list[Any]] = {}
    for event in events:
        if as_of_ms is not None and event.occur_time > as_of_ms:
            break
        if is_version_start(event):
            current = version_id(service_id, event.occur_time)
        key = (current, event.event_info)
        seen = found.get(key)
        if seen is None:
            found[key] = [v2_event_type(event), 1, event.occur_time, event.occur_time]
        else:
            seen[1] += 1
            seen[3] = max(seen[3], event.occur_time)
    return [
        EventRecord(
            record_id=record_id(version, text),
            service_id=service_id,
            service_version_id=version,
            event_type=kind,
            event_info=text,
            event_info_cn=chinese_text(text),
            event_count=count,
            create_at=first,
            update_at=last,
        )
        for (version, text), (kind, count, first, last) in found.items()
    ]
