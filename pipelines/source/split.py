"""Split a window that holds too many events of one service into smaller windows, recursively."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pipelines.source.client import ModelArtsClient
from pipelines.source.models import EventPage
from pipelines.source.paging import OffsetMode, iter_event_pages
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

# A window this short is paged whatever it holds (splitting cannot separate one millisecond).
MIN_SPLIT_SPAN_MS = 2


def iter_window_pages(
    client: ModelArtsClient,
    service_id: str,
    query: TimeWindow,
    *,
    limit: int,
    offset_mode: OffsetMode,
    max_pages: int,
    split_above: int | None,
) -> Iterator[EventPage]:
    """The pages of `service_id` in `query`, ascending, splitting crowded windows in halves.

    The first page tells total_count; above `split_above` the window becomes its two
    half-open halves, which tile it exactly (no event is asked for twice or skipped), each
    handled the same way. Otherwise that first page starts the paging.
    """
    first = client.fetch_events_page(service_id, query, offset=0, limit=limit)
    total_count = first.total_count
    span = query.end_ms - query.start_ms
    if split_above is not None and total_count > split_above and span >= MIN_SPLIT_SPAN_MS:
        del first  # not held while the halves are paged
        middle = query.start_ms + span // 2
        client.stats.add(windows_split=1)
        log.info(
            "service %s window %s holds %d events (more than %d): split at %d",
            service_id,
            query,
            total_count,
            split_above,
            middle,
        )
        for half in (TimeWindow(query.start_ms, middle), TimeWindow(middle, query.end_ms)):
            yield from iter_window_pages(
                client,
                service_id,
                half,
                limit=limit,
                offset_mode=offset_mode,
                max_pages=max_pages,
                split_above=split_above,
            )
        return
    pages = iter_event_pages(
        client,
        service_id,
        query,
        limit=limit,
        offset_mode=offset_mode,
        max_pages=max_pages,
        first_page=first,
    )
    del first  # the pager holds it only until the consumer has it
    yield from pages
