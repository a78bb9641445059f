"""Records as Postgres takes them: events as rows of COPY text, raw records as JSON text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from pipelines.source.models import ServiceEvent
from pipelines.windows import TimeWindow

# COPY text format: these four characters inside a value are written as escapes
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class EncodedEvents(NamedTuple):
    """Events as rows of COPY text (UTF-8), ready to send: see `encode_copy_rows`."""

    data: bytes
    rows: int
    # (service_id, occur_time) of the first event: a chunk's blocks are sent in this order
    first_key: tuple[str, int]


def encode_copy_rows(
    events: Sequence[ServiceEvent], row_end: str, window: TimeWindow | None = None
) -> EncodedEvents:
    """Events as rows of COPY text (UTF-8), each row ending in `row_end` (the load's batch id
    column and a newline, or a bare newline to add it later: `WindowLoad.add_copy_rows`).

    With `window` given, an event outside it raises ValueError.
    """
    if window is not None:
        start_ms, end_ms = window.start_ms, window.end_ms
        for service_id, occur_time, _, _, _ in events:
            if not start_ms <= occur_time < end_ms:
                raise ValueError(
                    f"event of service {service_id} at {occur_time} is outside "
                    f"the load's window {window}"
                )
    text = "".join(
        [
            f"{service_id}\t{occur_time}\t{event_type}\t{event_info}{row_end}"
            for service_id, occur_time, event_type, event_info, _ in events
        ]
    )
    # A tab, newline, CR or backslash inside a value shows as extra separators or a
    # backslash: only then are the values escaped one by one.
    n = len(events)
    tabs = 3 + row_end.count("\t")
    if text.count("\t") != tabs * n or text.count("\n") != n or "\\" in text or "\r" in text:
        text = "".join(
            f"{service_id.translate(_COPY_ESCAPES)}\t{occur_time}\t"
            f"{event_type.translate(_COPY_ESCAPES)}\t{event_info.translate(_COPY_ESCAPES)}"
            f"{row_end}"
            for service_id, occur_time, event_type, event_info, _ in events
        )
    first_key = (events[0][0], events[0][1]) if n else ("", 0)
    return EncodedEvents(text.encode("utf-8"), n, first_key)


def raw_record_json(raw: Any) -> str:
    """JSON text of a raw record (a NUL stays the six characters of its JSON escape).

    The standard library takes over where orjson refuses: integers beyond 64 bits and lone
    surrogates, both of which a hostile body can carry into a rejected record.
    """
    try:
        return orjson.dumps(raw, default=repr).decode("utf-8")
    except TypeError:
        return json.dumps(raw, default=repr, ensure_ascii=True)
