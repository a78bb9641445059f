"""Page through one service's events for one window, with stop rules that cannot loop forever."""

from __future__ import annotations

import enum
from collections.abc import Iterator

from pipelines.source.client import ModelArtsClient
from pipelines.source.errors import PagingError
from pipelines.source.models import EventPage, TimeWindow


class OffsetMode(enum.StrEnum):
    """What the API's `offset` means: the documented page index, or a record offset."""

    PAGE = "page"
    RECORD = "record"


def iter_event_pages(
    client: ModelArtsClient,
    service_id: str,
    query: TimeWindow,
    *,
    limit: int = 1000,
    offset_mode: OffsetMode = OffsetMode.PAGE,
    max_pages: int = 10_000,
) -> Iterator[EventPage]:
    """Yield the pages of `service_id` in `query`, ascending, until the window is exhausted.

    Stops on an empty page, a short page or when total_count is reached; raises PagingError
    when pages overlap or leave a gap against total_count (a wrong offset mode), or when
    `max_pages` is passed. total_count may grow while paging (events arriving): paging goes on
    until a short page, so nothing that existed at the start is lost.
    """
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be within 1..1000")
    received = 0
    first_total: int | None = None
    last_time: int | None = None
    for page_index in range(max_pages + 1):
        if page_index == max_pages:
            raise PagingError(
                f"service {service_id} window {query}: more than {max_pages} pages "
                f"({offset_mode} offsets, limit {limit}); raise max_pages or split the window"
            )
        offset = page_index if offset_mode is OffsetMode.PAGE else page_index * limit
        page = client.fetch_events_page(service_id, query, offset=offset, limit=limit)
        if first_total is None:
            first_total = page.total_count
        if len(page.events) > limit:
            raise PagingError(
                f"service {service_id} window {query}: page at offset {offset} holds "
                f"{len(page.events)} events, more than limit {limit}"
            )
        first_time = _first_time(page)
        if last_time is not None and first_time is not None and first_time < last_time:
            raise PagingError(
                f"service {service_id} window {query}: page at offset {offset} starts before "
                f"the previous page ended: pages overlap. Is MODELARTS_OFFSET_MODE "
                f"({offset_mode}) what the API uses?"
            )
        received += len(page.events)
        if page.events:
            yield page
            last_time = _last_time(page) if _last_time(page) is not None else last_time
        if not page.events or len(page.events) < limit or received >= page.total_count:
            break
    first_total = first_total or 0
    last_total = page.total_count
    if received < first_total:
        raise PagingError(
            f"service {service_id} window {query}: received {received} of {first_total} "
            f"events: pages left a gap. Is MODELARTS_OFFSET_MODE ({offset_mode}) what the "
            f"API uses?"
        )
    # Events arriving mid-paging may shift records across a page edge (seen twice, folded by
    # the dedup key): allow as many extra as total_count grew, and no more.
    if received > last_total + max(0, last_total - first_total):
        raise PagingError(
            f"service {service_id} window {query}: received {received} events but "
            f"total_count is {last_total}: pages overlap. Is MODELARTS_OFFSET_MODE "
            f"({offset_mode}) what the API uses?"
        )


def _first_time(page: EventPage) -> int | None:
    for raw in page.events:
        value = raw.get("occur_time") if isinstance(raw, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _last_time(page: EventPage) -> int | None:
    for raw in reversed(page.events):
        value = raw.get("occur_time") if isinstance(raw, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
