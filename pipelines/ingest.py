"""Extract from the API and load into the warehouse: one window in one transaction
(`load_events_window`), or a range of days with one extraction and one transaction per day
(`load_events_range`)."""

from __future__ import annotations

import bisect
import dataclasses
import gc
import itertools
import logging
import pickle
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from pipelines.source.client import ModelArtsClient
from pipelines.source.errors import PagingError
from pipelines.source.extract import ExtractionProgress, ExtractSettings, extract_window
from pipelines.source.models import RejectedEvent, ServiceEvent
from pipelines.warehouse.audit import loaded_windows, record_failed_load
from pipelines.warehouse.encoding import EncodedEvents, encode_copy_rows
from pipelines.warehouse.loader import DEFAULT_CHUNK_ROWS, LoadResult, WindowLoad
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

# Allocations between two collections of the garbage collector's youngest generation while a
# window loads (Python's default is 700). See `_fewer_gc_passes`.
LOAD_GC_THRESHOLD = 50_000
# Encoded events a range load keeps in memory, over all its days, before spilling them to
# unnamed temporary files (see `load_events_range`).
SPILL_MEMORY_BYTES = 8 * 1024 * 1024
# Counters of a range's one extraction that belong to no single day: they are recorded on the
# audit row of the range's last day (the other days record 0), so sums over days stay true.
RANGE_COUNTERS = (
    "services_missing",
    "requests",
    "retries",
    "throttled",
    "token_refreshes",
    "windows_split",
    "out_of_window",
    "unknown_event_types",
    "repaired",
)
_gc_lock = threading.Lock()
_gc_loads = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Run the cyclic garbage collector less often while a window loads.

    Every fetched event allocates a dict, its strings and a tuple that live until its page is
    loaded, so with the default threshold the collector scans the young objects once every 700
    allocations, over and over: a large share of the client's CPU in a big load (bench/README.md,
    bench_load.py). Those objects are freed by reference counting either way; the collector
    only looks for reference cycles, which now wait a little longer (a few MB more at the peak).
    The threshold is process-wide: it is raised while any load runs and restored when the last
    one ends.
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
    # fetching while Postgres inserts a chunk (measured: bench/README.md, "Figures behind
    # comments in the code").
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


Segment = tuple[str, TimeWindow]
"""(partition key, window) of one load of a range: a UTC day, or the lookback hours before
the first day (keyed by that day)."""


def load_events_range(
    client: ModelArtsClient,
    engine: Engine,
    service_ids: Sequence[str],
    segments: Sequence[Segment],
    settings: ExtractSettings,
    *,
    run_id: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    spill_bytes: int = SPILL_MEMORY_BYTES,
) -> list[WindowReport]:
    """Load consecutive windows (days) with one extraction over all of them.

    Each service's events of the whole range are asked for as one window (split in halves only
    where it holds more than the split threshold), so the API sees about one request per
    `page_limit` events of a service whatever the number of days, instead of at least one per
    service and day. The workers route each page's events to their segment and encode them;
    they wait per segment in memory up to `spill_bytes` in all, beyond that in unnamed temporary
    files (gone with the process, even a killed one), so memory does not grow with the range.
    The workers advance the services together through time (`extract_window`), and a segment
    loads, in a thread of its own, as soon as every service has been fetched beyond its end,
    while the later segments are still being fetched: one `WindowLoad` per segment, in order,
    with its day locks, audit row and exactness as `load_events_window` (the last segment loads
    when the extraction has ended: its audit row holds the range's own counters). What a failed
    extraction fetched is not thrown away: the segments every service had been fetched beyond
    load, the others get a failed audit row; a failed load stops the extraction and keeps the
    segments committed before it. With a `run_id`, segments this run has loaded
    already (a step retry of a range that failed half-way) are not fetched again. One segment
    streams through `load_events_window` instead.
    """
    segments = _not_loaded_yet(engine, segments, run_id)
    if not segments:
        return []
    if len(segments) == 1:
        key, window = segments[0]
        return [
            load_events_window(
                client,
                engine,
                service_ids,
                window,
                settings,
                run_id=run_id,
                partition_key=key,
                chunk_rows=chunk_rows,
            )
        ]
    for (_, before), (_, after) in itertools.pairwise(segments):
        if before.end_ms != after.start_ms:
            raise ValueError(f"segments must be consecutive: {before} then {after}")
    started = time.perf_counter()
    starts = [window.start_ms for _, window in segments]
    whole = TimeWindow(starts[0], segments[-1][1].end_ms)
    spills = [_Spill(spill_bytes // len(segments)) for _ in segments]
    rejected: list[list[RejectedEvent]] = [[] for _ in segments]
    pages = [0] * len(segments)

    def route(events: list[ServiceEvent]) -> list[tuple[int, EncodedEvents]]:
        """In a worker: the page's events by segment, encoded without a batch id."""
        by_segment: dict[int, list[ServiceEvent]] = {}
        for event in events:
            index = bisect.bisect_right(starts, event.occur_time) - 1
            by_segment.setdefault(index, []).append(event)
        return [(i, encode_copy_rows(part, "\n")) for i, part in by_segment.items()]

    progress = ExtractionProgress()

    def load(index: int, last: int, totals: dict[str, int]) -> WindowReport:
        """Segment `index`'s load; the range's own counters go on segment `last`."""
        counts = {name: 0 for name in totals}
        counts["services"] = totals["services"]
        counts["pages"] = pages[index]
        counts["quarantined"] = len(rejected[index])
        counts["fetched"] = spills[index].rows + len(rejected[index])
        if index == last:
            counts.update({name: totals[name] for name in RANGE_COUNTERS})
            counts["fetched"] += totals["out_of_window"]
        key, window = segments[index]
        report = _load_segment(
            engine, key, window, spills[index], rejected[index], counts,
            run_id=run_id, chunk_rows=chunk_rows,
        )  # fmt: skip
        spills[index].close()
        return report

    # Segments load in a thread of their own, in order, each as soon as every service has been
    # fetched beyond its end (`sealed`), while the workers fetch the later ones.
    loader = _SegmentLoader(load)
    sealed = 0

    def seal(upto: int, last: int) -> None:
        nonlocal sealed
        totals = client.stats.as_dict()
        while sealed < upto:
            loader.submit(sealed, last, totals)
            sealed += 1

    def open_segment(index: int) -> int:
        """A rejected record's segment, or the first not sealed yet (quarantine rows are keyed
        by service and content, not by window)."""
        return max(index, sealed)

    try:
        with _fewer_gc_passes():
            extracted = extract_window(
                client, service_ids, whole, settings, encode=route, progress=progress
            )
            try:
                for page in extracted:
                    for index, block in page.encoded:
                        if index < sealed:  # pages come in ascending time: never happens
                            raise PagingError(
                                f"service {page.service_id}: events of {segments[index][1]} "
                                f"came after every service's pages had passed its end"
                            )
                        spills[index].write(block)
                    for record in page.rejected:
                        rejected[open_segment(_segment_of(record, starts))].append(record)
                    # a page counts for the segment of its first event
                    if page.encoded:
                        pages[page.encoded[0][0]] += 1
                    elif page.rejected:
                        pages[open_segment(_segment_of(page.rejected[0], starts))] += 1
                    else:  # only events outside the range, counted on the last segment
                        pages[-1] += 1
                    loader.check()
                    reached = progress.complete_before(service_ids, whole)
                    # the last segment waits for the end: it records the range's counters
                    while sealed < len(segments) - 1 and segments[sealed][1].end_ms <= reached:
                        seal(sealed + 1, len(segments) - 1)
            except _LoadFailed:
                raise
            except Exception as exc:
                extracted.close()  # stop the workers first
                # the segments every service was fetched beyond are complete: they load; the
                # others say they failed in their audit rows (`modelarts-etl status`)
                reached = progress.complete_before(service_ids, whole)
                complete = max(sealed, sum(1 for _, window in segments if window.end_ms <= reached))
                if complete > sealed:
                    log.warning(
                        "range %s: the extraction failed after the first %d of %d windows were "
                        "fetched from every service: loading those", whole, complete,
                        len(segments),
                    )  # fmt: skip
                    seal(complete, complete - 1)
                try:
                    loader.finish()
                except _LoadFailed:
                    log.exception("range %s: the complete windows could not be loaded", whole)
                for key, window in segments[complete:]:
                    record_failed_load(
                        engine, window, exc, {"run_id": run_id, "partition_key": key}
                    )
                raise
            finally:
                extracted.close()  # see load_events_window
        extract_seconds = time.perf_counter() - started
        totals = client.stats.as_dict()
        log.info(
            "range %s: %d services, %d fetched in %d requests (%.2f s); %d of %d windows "
            "loaded meanwhile",
            whole, totals["services"], totals["fetched"], totals["requests"], extract_seconds,
            loader.done, len(segments),
        )  # fmt: skip
        seal(len(segments), len(segments) - 1)
        return loader.finish()
    except _LoadFailed as failed:
        raise failed.error from None
    finally:
        loader.stop()
        for spill in spills:
            spill.close()


class _LoadFailed(Exception):
    """A segment's load failed (its error in `error`): the extraction stops, no failed audit
    rows are written for the later segments (the failed load wrote its own)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class _SegmentLoader:
    """Loads sealed segments in a thread, in the order they are submitted."""

    def __init__(self, load: Callable[[int, int, dict[str, int]], WindowReport]):
        self._load = load
        self._queue: queue.SimpleQueue[tuple[int, int, dict[str, int]] | None] = queue.SimpleQueue()
        self._reports: list[WindowReport] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._abandon = threading.Event()

    @property
    def done(self) -> int:
        return len(self._reports)

    def submit(self, index: int, last: int, totals: dict[str, int]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="range-loader", daemon=True)
            self._thread.start()
        self._queue.put((index, last, totals))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._abandon.is_set():
                continue
            try:
                self._reports.append(self._load(*item))
            except BaseException as exc:  # raised in the consumer's thread by check()/finish()
                self._error = exc

    def check(self) -> None:
        """Raise a load's failure in the calling thread."""
        if self._error is not None:
            raise _LoadFailed(self._error)

    def finish(self) -> list[WindowReport]:
        """Wait for every submitted load; their reports (or the first failure)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self.check()
        return self._reports

    def stop(self) -> None:
        """Leave the loads not started yet (an error is on its way out) and wait for the one
        running: it commits or rolls back as a whole."""
        if self._thread is not None:
            self._abandon.set()
            self._queue.put(None)
            self._thread.join()
            self._thread = None


def _not_loaded_yet(
    engine: Engine, segments: Sequence[Segment], run_id: str | None
) -> Sequence[Segment]:
    """`segments` from the first one run `run_id` has not loaded (all without a run id): a
    step retry of a range that failed half-way fetches only what is missing."""
    if run_id is None:
        return segments
    loaded = loaded_windows(engine, run_id)
    for index, (_, window) in enumerate(segments):
        if (window.start_ms, window.end_ms) not in loaded:
            if index:
                log.info(
                    "run %s loaded %d of these windows already (before %s): fetching the rest",
                    run_id, index, window,
                )  # fmt: skip
            return segments[index:]
    log.info("run %s loaded all %d windows already: nothing to fetch", run_id, len(segments))
    return []


def _segment_of(record: RejectedEvent, starts: list[int]) -> int:
    """The segment of a rejected record: by its occur_time when it has a usable one, else the
    first (quarantine rows are keyed by service and content, not by window)."""
    raw = record.raw
    value = raw.get("occur_time") if isinstance(raw, dict) else None
    if type(value) is not int or value < starts[0]:
        return 0
    return bisect.bisect_right(starts, value) - 1


def _load_segment(
    engine: Engine,
    key: str,
    window: TimeWindow,
    spill: _Spill,
    rejected: list[RejectedEvent],
    counts: dict[str, int],
    *,
    run_id: str | None,
    chunk_rows: int,
) -> WindowReport:
    started = time.perf_counter()
    with (
        _fewer_gc_passes(),
        WindowLoad(engine, window, run_id=run_id, partition_key=key, chunk_rows=chunk_rows) as load,
    ):
        for block in spill.read():
            load.add_copy_rows(block)
        load.add_rejected(rejected)
        result = load.commit(counts)
    report = WindowReport(window, result.batch_id, counts, result, time.perf_counter() - started)
    log.info(
        "window %s: %d services, %d fetched, %d inserted, %d already present, %d quarantined",
        window, counts["services"], counts["fetched"], result.inserted, result.already_present,
        result.quarantined,
        extra={"window_report": report},  # the CLI prints a row per day from this
    )  # fmt: skip
    return report


class _Spill:
    """One segment's encoded events until its load: in memory up to `max_bytes`, then in an
    unnamed temporary file."""

    def __init__(self, max_bytes: int):
        # closed by close(), which load_events_range calls in a finally
        self._file = tempfile.SpooledTemporaryFile(max_size=max(1, max_bytes))  # noqa: SIM115
        self.rows = 0

    def write(self, block: EncodedEvents) -> None:
        pickle.dump((block.first_key, block.rows, block.data), self._file, protocol=5)
        self.rows += block.rows

    def read(self) -> Iterator[EncodedEvents]:
        self._file.seek(0)
        while True:
            try:
                first_key, rows, data = pickle.load(self._file)
            except EOFError:
                return
            yield EncodedEvents(data, rows, first_key)

    def close(self) -> None:
        self._file.close()
