"""Extract one window from the API and load it into the warehouse in one transaction."""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from pipelines.source.client import ModelArtsClient
from pipelines.source.extract import ExtractSettings, extract_window
from pipelines.source.models import RejectedEvent, TimeWindow
from pipelines.warehouse.loader import DEFAULT_CHUNK_ROWS, LoadResult, WindowLoad

log = logging.getLogger(__name__)

# Allocations between two collections of the garbage collector's youngest generation while a
# window loads (Python's default is 700). See `_fewer_gc_passes`.
LOAD_GC_THRESHOLD = 50_000
_gc_lock = threading.Lock()
_gc_loads = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Run the cyclic garbage collector less often while a window loads.

    Every fetched event allocates a dict, its strings and a tuple that live until its page is
    loaded, so with the default threshold the collector scans the young objects once every 700
    allocations, over and over: about a third of the client's CPU in a 1 M event load (4.8 s ->
    3.5 s of CPU, bench/README.md). Those objects are freed by reference counting either way;
    the collector only looks for reference cycles, which now wait a little longer (peak RSS
    +4 MB at 2 M events). The threshold is process-wide: it is raised while any load runs and
    restored when the last one ends.
    """
    global _gc_loads, _gc_saved
    with _gc_lock:
        if _gc_loads == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(LOAD_GC_THRESHOLD, *_gc_saved[1:])
        _gc_loads += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_loads -= 1
            if _gc_loads == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)


@dataclass(frozen=True)
class WindowReport:
    """What one window's load did, for logs, audit and Dagster metadata."""

    window: TimeWindow
    batch_id: int
    counts: dict[str, int]
    load: LoadResult
    seconds: float

    def as_metadata(self) -> dict[str, int | float | str]:
        return {
            **self.counts,
            "staged": self.load.staged,
            "inserted": self.load.inserted,
            "already_present": self.load.already_present,
            "quarantined": self.load.quarantined,
            "batch_id": self.batch_id,
            "seconds": round(self.seconds, 3),
        }


def load_events_window(
    client: ModelArtsClient,
    engine: Engine,
    service_ids: Sequence[str],
    window: TimeWindow,
    settings: ExtractSettings,
    *,
    run_id: str | None = None,
    partition_key: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> WindowReport:
    """Fetch every service's events in `window` and land them exactly once.

    Fetching (worker threads) overlaps with loading (this thread): while Postgres inserts one
    chunk of `chunk_rows` events, the workers fetch the next chunks' pages into a bounded
    buffer, so memory depends on the chunk size, not on the window. All chunks and the audit
    row commit together, so a failure anywhere leaves no rows.
    """
    started = time.perf_counter()
    # Room for about two chunks of events even when pages are half full, so the workers keep
    # fetching while Postgres inserts a chunk (bench_load.py: 200 pages of 500 events loaded 1 M
    # 13% faster than 100 pages, and 400 pages no faster; +11 MB peak RSS).
    buffered_pages = max(settings.max_buffered_pages, 4 * chunk_rows // max(1, settings.page_limit))
    settings = dataclasses.replace(settings, max_buffered_pages=buffered_pages)
    rejected: list[RejectedEvent] = []
    with (
        _fewer_gc_passes(),
        WindowLoad(
            engine, window, run_id=run_id, partition_key=partition_key, chunk_rows=chunk_rows
        ) as load,
    ):
        # The workers encode each page as COPY rows, so this thread only hands them to Postgres.
        pages = extract_window(client, service_ids, window, settings, encode=load.encode_events)
        try:
            for page in pages:
                rejected.extend(page.rejected)
                load.add_encoded(page.encoded)
        finally:
            # A load that fails mid-stream leaves the generator suspended (the exception holds
            # it): close it now, or the fetching workers wait on a full buffer forever and the
            # process never exits.
            pages.close()
        load.add_rejected(rejected)
        counts = client.stats.as_dict()
        result = load.commit(counts)
    report = WindowReport(window, result.batch_id, counts, result, time.perf_counter() - started)
    log.info(
        "window %s: %d services, %d fetched, %d inserted, %d already present, %d quarantined",
        window,
        counts["services"],
        counts["fetched"],
        result.inserted,
        result.already_present,
        result.quarantined,
        extra={"window_report": report},  # the CLI prints a row per day from this
    )
    return report
