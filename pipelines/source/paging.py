"""Page through one service's events for one window, with stop rules that cannot loop forever."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from typing import Any, Protocol

import orjson

from pipelines.source.errors import PagingError
from pipelines.source.models import EventPage
from pipelines.source.validation import MAX_OCCUR_TIME_MS, MIN_OCCUR_TIME_MS
from pipelines.windows import TimeWindow

MAX_LIMIT = 1000


class OffsetMode(enum.StrEnum):
    """What the API's `offset` means: the documented page index, or a record offset."""

    PAGE = "page"
    RECORD = "record"


class PageSource(Protocol):
    def fetch_events_page(
        self, service_id: str, query: TimeWindow, offset: int, limit: int
    ) -> EventPage: ...


def iter_event_pages(
    client: PageSource,
    service_id: str,
    query: TimeWindow,
    *,
    limit: int = MAX_LIMIT,
    offset_mode: OffsetMode = OffsetMode.PAGE,
    max_pages: int = 10_000,
    first_page: EventPage | None = None,
) -> Iterator[EventPage]:
    """Yield the pages of `service_id` in `query`, ascending, until the window is exhausted.

    Stops on an empty page, a short page or when total_count is reached; raises PagingError
    when `max_pages` is passed, and when pages overlap or leave a gap against total_count,
    which is what a wrong offset mode looks like:
    - page offsets sent to a record-offset API: page k starts at record k, so each page repeats
      all but one record of the one before;
    - record offsets sent to a page-index API: the second page starts at record limit*limit,
      so records are skipped and fewer than total_count arrive.
    Events arriving while paging (total_count grows) may push records already read onto the
    next page: a page may repeat as many records as total_count grew (plus one, for an event
    the API itself serves twice across a page edge), never more. Paging goes on until a short
    page, so nothing that existed when paging began is lost, and the pages must then add up
    to the last total_count exactly. An event arriving with a time before the page being read
    is missed by this pass: the lookback of the next run picks it up.
    With limit 2 the two modes can be told apart only when total_count is not a multiple of
    2: use limits of 10 and more (the resource enforces it). `first_page` is page 0 when the
    caller already fetched it.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be within 1..{MAX_LIMIT}")
    where = f"service {service_id} window {query} ({offset_mode} offsets, limit {limit})"
    received = 0
    # Of the page before, only what the checks need: its total_count and a key per record
    # (not its records: a suspended pager, one per service in flight, holds a few KB, and
    # the consumer may drop the records it was given as soon as it has read them)
    previous_total: int | None = None
    previous_keys: list[int] = []
    last_time: int | None = None
    page = first_page
    del first_page
    for page_index in range(max_pages + 1):
        if page_index == max_pages:
            raise PagingError(
                f"{where}: more than {max_pages} pages; raise max_pages or lower the split "
                f"threshold so that the window is split"
            )
        offset = page_index if offset_mode is OffsetMode.PAGE else page_index * limit
        if page is None or page_index > 0:
            page = client.fetch_events_page(service_id, query, offset=offset, limit=limit)
        events = page.events
        total_count = page.total_count
        if len(events) > limit:
            raise PagingError(
                f"{where}: page at offset {offset} holds {len(events)} events, more than the limit"
            )
        keys: list[int] = []
        if previous_total is not None:
            growth = max(0, total_count - previous_total)
            keys = _record_keys(events)
            repeated = _repeated_records(previous_keys, keys, events, last_time)
            if repeated > growth + 1:
                raise PagingError(
                    f"{where}: the page at offset {offset} repeats {repeated} records of the "
                    f"page before while total_count grew by {growth}: pages overlap. "
                    f"Is MODELARTS_OFFSET_MODE ({offset_mode}) what the API uses?"
                )
        received += len(events)
        more = bool(events) and len(events) >= limit and received < total_count
        if more and not keys:
            keys = _record_keys(events)
        last_time = _last_time(events, last_time)
        del events
        if page.events:
            yield page
        if not more:
            break
        previous_total, previous_keys = total_count, keys
        page = None
    # The pages tile the positions 0..received-1 of the log as it was when each was served:
    # with the right offset mode, received equals the last total_count exactly.
    if received < total_count:
        raise PagingError(
            f"{where}: received {received} of {total_count} events: pages left a gap. "
            f"Is MODELARTS_OFFSET_MODE ({offset_mode}) what the API uses?"
        )
    if received > total_count:
        raise PagingError(
            f"{where}: received {received} events but total_count is {total_count}: "
            f"pages overlap. Is MODELARTS_OFFSET_MODE ({offset_mode}) what the API uses?"
        )


def _record_keys(records: list[Any]) -> list[int]:
    """A 64-bit key per record, equal for equal records (their JSON with sorted keys)."""
    keys = []
    for record in records:
        try:
            text = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits, parsed by the standard library
            text = json.dumps(record, sort_keys=True, default=str).encode()
        keys.append(hash(text))
    return keys


def _repeated_records(
    before: list[int], head_keys: list[int], page: list[Any], last_time: int | None
) -> int:
    """How many distinct records at the head of `page` were already read at the tail of the
    page before (`before`: its records' keys; `head_keys`: the keys of `page`'s records).

    The larger of two lower bounds: the distinct records of the longest head of `page` that
    equals a tail of the page before (a run of one event the API repeats counts once), and
    the records whose occur_time lies before the last time already read (order is asc).
    """
    backwards = 0
    if last_time is not None:
        backwards = sum(1 for t in map(_time, page) if t is not None and t < last_time)
    same = 0
    if head_keys and before:
        head = head_keys[0]
        longest = min(len(before), len(head_keys))
        for start in range(len(before) - longest, len(before)):
            k = len(before) - start
            if before[start] == head and before[start:] == head_keys[:k]:
                same = len(set(head_keys[:k]))
                break
    return max(backwards, same)


def _time(raw: Any) -> int | None:
    """occur_time of a record that validation would accept, else None (malformed records
    carry no usable order)."""
    value = raw.get("occur_time") if isinstance(raw, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return value if MIN_OCCUR_TIME_MS <= value < MAX_OCCUR_TIME_MS else None


def _last_time(events: list[Any], default: int | None) -> int | None:
    for raw in reversed(events):
        value = _time(raw)
        if value is not None:
            return value if default is None else max(default, value)
    return default
