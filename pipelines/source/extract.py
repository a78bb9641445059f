"""Extract one window of events for many services, concurrently, as a stream of pages."""

from __future__ import annotations

import heapq
import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.source.client import ModelArtsClient
from pipelines.source.errors import ExtractionStalledError, ServiceNotFoundError
from pipelines.source.limiter import Concurrency
from pipelines.source.models import EventPage, RejectedEvent, ServiceEvent
from pipelines.source.paging import OffsetMode
from pipelines.source.split import iter_window_pages
from pipelines.source.validation import KNOWN_EVENT_TYPES, validate_event
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractSettings:
    page_limit: int = 1000
    offset_mode: OffsetMode = OffsetMode.PAGE
    max_pages_per_window: int = 10_000
    # A service's window holding more events than this is split into halves (recursively).
    split_threshold: int | None = 20_000
    workers: int = 4
    # the most workers `Concurrency` scales up to while answers are slow and nothing throttles
    # (MODELARTS_MAX_WORKERS); 0: `workers`, fixed
    max_workers: int = 0
    max_buffered_pages: int = 16
    # Ask 1 ms beyond each end: whether the API's ends are inclusive is undocumented.
    edge_margin_ms: int = 1
    # No page from any worker for this long fails the window (every request has its own
    # timeouts and retries, so only a wedged worker gets here): PIPELINES_WAIT_TIMEOUT_S.
    stall_timeout_s: float = 3600.0
    # a stall this long is logged, naming the services still in flight
    stall_log_s: float = 60.0


@dataclass
class ExtractedPage:
    """The validated events of one page that fall inside the window, and its rejects.

    With an `encode` function given to `extract_window`, `encoded` holds what it made of the
    events (in the worker thread that fetched the page) and `events` is emptied.
    """

    service_id: str
    events: list[ServiceEvent] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)
    encoded: Any = None
    # the latest occur_time the page held (valid or not): the service's events before it
    # have all been fetched
    through_ms: int | None = None


@dataclass
class ExtractionProgress:
    """How far each service's events have reached the consumer: a service in `done` gave all
    of them; else every event before `through_ms[service]` has been yielded (pages come in
    ascending occur_time). Updated in the consumer's thread, as it receives pages."""

    through_ms: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    # the number of workers at the start and at each change, with why (`Concurrency.history`)
    workers: list[tuple[int, str]] = field(default_factory=list)

    def complete_before(self, service_ids: Sequence[str], window: TimeWindow) -> int:
        """The time before which every service's events of `window` were all received."""
        reached = window.end_ms
        for service_id in service_ids:
            if service_id not in self.done:
                reached = min(reached, self.through_ms.get(service_id, window.start_ms))
        return max(reached, window.start_ms)


@dataclass(frozen=True)
class _ServiceDone:
    service_id: str
    error: BaseException | None


def extract_window(
    client: ModelArtsClient,
    service_ids: Sequence[str],
    window: TimeWindow,
    settings: ExtractSettings,
    encode: Callable[[list[ServiceEvent]], Any] | None = None,
    progress: ExtractionProgress | None = None,
) -> Generator[ExtractedPage, None, None]:
    """Yield validated pages of every service's events in `window` as workers fetch them.

    Events outside the half-open window (returned by the 1 ms margin, or by an API that reads
    the ends differently) are dropped and counted as out_of_window, so an event on a boundary
    belongs to exactly one window. A service deleted since listing (ModelArts.3502) is counted
    in services_missing and skipped; any other error stops the extraction and is raised.
    Memory is bounded by `max_buffered_pages`, whatever the window holds. `encode`, when given,
    turns each page's events into what the consumer loads, in the workers: the loader's encoding
    then runs beside its inserts instead of between them. `progress`, when given, says how far
    each service got, also after a failure (what was fetched can still be kept).

    The workers take page by page, not service by service: each next request goes to the
    service whose pages reached the earliest time (`_Schedule`), so every service's events
    advance through the window together and `progress.complete_before` rises while the
    extraction goes on (a range load commits its first days long before its last are fetched).
    Each service is still paged once over the window, as `iter_window_pages` pages it.
    """
    progress = progress if progress is not None else ExtractionProgress()
    stats = client.stats
    stats.add(services=len(service_ids))
    query = TimeWindow(
        window.start_ms - settings.edge_margin_ms, window.end_ms + settings.edge_margin_ms
    )
    buffer: queue.Queue[ExtractedPage | _ServiceDone] = queue.Queue(settings.max_buffered_pages)
    stop = threading.Event()

    def put(item: ExtractedPage | _ServiceDone) -> None:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    schedule = _Schedule(service_ids, query.start_ms, stop)
    in_flight = schedule.in_flight
    iterators: dict[str, Iterator[EventPage]] = {}

    def advance(service_id: str) -> int | None:
        """Fetch `service_id`'s next page and hand it on: the time its pages reached, or
        None when the service has no more (its end, or its failure, was handed on)."""
        pages = iterators.get(service_id)
        if pages is None:
            pages = iterators[service_id] = iter_window_pages(
                client,
                service_id,
                query,
                limit=settings.page_limit,
                offset_mode=settings.offset_mode,
                max_pages=settings.max_pages_per_window,
                split_above=settings.split_threshold,
            )
        error: BaseException | None = None
        try:
            page = next(pages, None)
            if page is not None:
                stats.add(pages=1, fetched=len(page.events))
                extracted = _validate_page(service_id, page.events, window, client)
                extracted.through_ms = _latest_time(page.events)
                # the raw records are dropped once validated: the pager, suspended until this
                # service's next turn, still refers to the page (iter_event_pages)
                page.events.clear()
                del page
                if encode is not None:
                    extracted.encoded = encode(extracted.events)
                    extracted.events = []
                put(extracted)
                return extracted.through_ms if extracted.through_ms is not None else query.start_ms
        except ServiceNotFoundError:
            log.warning("service %s was deleted since it was listed; skipped", service_id)
            stats.add(services_missing=1)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            error = exc
        iterators.pop(service_id, None)
        put(_ServiceDone(service_id, error))
        return None

    control = Concurrency(
        client.limiter, settings.workers, min(settings.max_workers or 0, len(service_ids))
    )
    progress.workers = control.history
    threads: list[threading.Thread] = []
    alive = 0
    threads_lock = threading.Lock()

    def staff(wanted: int) -> None:
        """Start workers up to `wanted` (the extraction's, not the process's, threads)."""
        nonlocal alive
        with threads_lock:
            while alive < wanted and not stop.is_set():
                thread = threading.Thread(target=work, name=f"extract-{len(threads)}", daemon=True)
                threads.append(thread)
                alive += 1
                thread.start()

    def retire() -> bool:
        """True when this worker is one too many (throttled): it ends."""
        nonlocal alive
        with threads_lock:
            if alive > control.workers:
                alive -= 1
                return True
            return False

    def work() -> None:
        while not stop.is_set():
            taken = schedule.take()
            if taken is None:
                return
            reached, order, service_id = taken
            through = advance(service_id)
            if through is not None:
                through = max(reached, through)
            schedule.give_back(through, order, service_id)
            if control.update() > alive:
                staff(control.workers)
            elif retire():
                return

    pending = len(service_ids)
    staff(control.workers)
    finished = False
    try:
        while pending:
            item = _next(buffer, settings, window, in_flight)
            if isinstance(item, _ServiceDone):
                pending -= 1
                if item.error is not None:
                    raise item.error
                progress.done.add(item.service_id)
                continue
            if item.through_ms is not None:
                reached = progress.through_ms.get(item.service_id, item.through_ms)
                progress.through_ms[item.service_id] = max(reached, item.through_ms)
            yield item
        finished = True
    finally:
        stop.set()
        schedule.wake()
        # After a failure, a worker stuck in a call (the case of the stall deadline) is not
        # waited for: it ends on its own or with the process (a daemon thread), while the
        # failure reaches the run now.
        if finished:
            with threads_lock:
                started = list(threads)
            for thread in started:
                thread.join()


class _Schedule:
    """The services whose next page may be asked for, the one whose pages reached the earliest
    time first (then in listing order); a service is advanced by one worker at a time."""

    def __init__(self, service_ids: Sequence[str], start_ms: int, stop: threading.Event):
        # (time reached, listing order, service id): a sorted list is a heap
        self._ready = [(start_ms, order, sid) for order, sid in enumerate(service_ids)]
        self._busy = 0
        self._changed = threading.Condition()
        self._stop = stop
        self.in_flight: set[str] = set()

    def take(self) -> tuple[int, int, str] | None:
        """The next service to advance, waiting while all are being advanced; None when none
        is left (or the extraction stopped)."""
        with self._changed:
            while not self._ready:
                if not self._busy or self._stop.is_set():
                    return None
                self._changed.wait()
            if self._stop.is_set():
                return None
            taken = heapq.heappop(self._ready)
            self._busy += 1
            self.in_flight.add(taken[2])
            return taken

    def give_back(self, reached: int | None, order: int, service_id: str) -> None:
        """`service_id` was advanced; `reached` None: it has no more pages."""
        with self._changed:
            self._busy -= 1
            self.in_flight.discard(service_id)
            if reached is not None:
                heapq.heappush(self._ready, (reached, order, service_id))
            self._changed.notify_all()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()


def _next(
    buffer: queue.Queue[ExtractedPage | _ServiceDone],
    settings: ExtractSettings,
    window: TimeWindow,
    in_flight: set[str],
) -> ExtractedPage | _ServiceDone:
    """The next item from the workers; a long silence is logged, and fails the window after
    `settings.stall_timeout_s`."""
    waited = 0.0
    while True:
        step = min(settings.stall_log_s, settings.stall_timeout_s - waited)
        try:
            return buffer.get(timeout=step)
        except queue.Empty:
            waited += step
        busy = ", ".join(sorted(in_flight)[:5]) + (" ..." if len(in_flight) > 5 else "")
        if waited >= settings.stall_timeout_s:
            raise ExtractionStalledError(
                f"window {window}: no page from any worker for {waited:.0f} s "
                f"(services in flight: {busy or 'none'}); gave up"
            )
        log.warning(
            "window %s: no page for %.0f s; waiting on services %s (gives up after %.0f s)",
            window, waited, busy or "none", settings.stall_timeout_s,
        )  # fmt: skip


def _latest_time(raws: list[object]) -> int | None:
    """The occur_time of a page's last record that has one (pages come ascending)."""
    for raw in reversed(raws):
        if isinstance(raw, dict) and type(t := raw.get("occur_time")) is int:
            return t
    return None


def _validate_page(
    service_id: str, raws: list[object], window: TimeWindow, client: ModelArtsClient
) -> ExtractedPage:
    page = ExtractedPage(service_id)
    out_of_window = unknown_types = repaired = 0
    start_ms, end_ms = window.start_ms, window.end_ms
    append = page.events.append
    for raw in raws:
        # Fast path for the usual record, which validate_event would accept unchanged: the
        # client spends most of its CPU here (bench_load.py). Anything else takes the full check.
        if type(raw) is dict:
            t, info, kind = raw.get("occur_time"), raw.get("event_info"), raw.get("event_type")
            if (
                type(t) is int
                and start_ms <= t < end_ms
                and type(info) is str
                and info.isascii()
                and "\x00" not in info
                and (kind == "normal" or kind == "abnormal")
            ):
                append(ServiceEvent(service_id, t, kind, info))
                continue
        checked = validate_event(service_id, raw)
        if isinstance(checked, RejectedEvent):
            page.rejected.append(checked)
        elif not window.contains(checked.occur_time):
            out_of_window += 1
        else:
            if checked.event_type not in KNOWN_EVENT_TYPES:
                unknown_types += 1
            repaired += checked.repaired
            page.events.append(checked)
    client.stats.add(
        repaired=repaired,
        out_of_window=out_of_window,
        quarantined=len(page.rejected),
        unknown_event_types=unknown_types,
    )
    return page
