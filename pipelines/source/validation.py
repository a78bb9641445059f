"""Check raw event records: a valid ServiceEvent, or a RejectedEvent with the reason."""

from __future__ import annotations

import re
from typing import Any

from pipelines.source.models import RejectedEvent, ServiceEvent

KNOWN_EVENT_TYPES = frozenset({"normal", "abnormal"})
# 2000-01-01 .. 2100-01-01: anything outside is a unit mistake (seconds, microseconds) or garbage.
MIN_OCCUR_TIME_MS = 946_684_800_000
MAX_OCCUR_TIME_MS = 4_102_444_800_000


def validate_event(service_id: str, raw: Any) -> ServiceEvent | RejectedEvent:
    """Validate one record of the `events` list.

    An unknown event_type is kept (callers count it); everything else that is off is rejected.
    """
    if not isinstance(raw, dict):
        return RejectedEvent(service_id, raw, f"record is a {type(raw).__name__}, not an object")
    occur_time = raw.get("occur_time")
    if "occur_time" not in raw:
        return RejectedEvent(service_id, raw, "occur_time missing")
    if isinstance(occur_time, float) and occur_time.is_integer():
        occur_time = int(occur_time)  # 1764288000000.0: some encoders write integers so
    if isinstance(occur_time, bool) or not isinstance(occur_time, int):
        return RejectedEvent(
            service_id, raw, f"occur_time is a {type(occur_time).__name__}, not an integer"
        )
    if not MIN_OCCUR_TIME_MS <= occur_time < MAX_OCCUR_TIME_MS:
        return RejectedEvent(service_id, raw, "occur_time outside 2000-01-01..2100-01-01")
    event_info = raw.get("event_info")
    if not isinstance(event_info, str):
        return RejectedEvent(
            service_id, raw, f"event_info is a {type(event_info).__name__}, not a string"
        )
    event_info, repaired = repair_text(event_info)
    event_type = raw.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return RejectedEvent(service_id, raw, "event_type missing or not a string")
    return ServiceEvent(service_id, occur_time, event_type, event_info, repaired)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def repair_text(text: str) -> tuple[str, bool]:
    """Replace what Postgres text cannot hold with U+FFFD: NUL, and lone UTF-16 surrogates
    (which a JSON escape like \\ud800 can produce). The event is kept; callers count it."""
    if _UNSTORABLE.search(text) is None:
        return text, False
    return _UNSTORABLE.sub("\ufffd", text), True
