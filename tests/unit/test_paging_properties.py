"""The pager against an in-process fake of the events call, over any total, limit and shift.

The fake serves a sorted log in either offset mode; after each page it may let `shift` new
events arrive anywhere in the window (so pages shift under the cursor), and it may hold
events twice (the API's own repeats, counted in total_count).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.source.errors import PagingError
from pipelines.source.models import EventPage
from pipelines.source.paging import OffsetMode, iter_event_pages
from pipelines.windows import TimeWindow

WINDOW = TimeWindow(1_700_000_000_000, 1_700_000_100_000)


class FakeEventLog:
    def __init__(
        self,
        total: int,
        mode: OffsetMode,
        shift: int,
        rng: random.Random,
        duplicate_every: int = 0,
    ):
        self.mode = mode
        self.shift = shift
        self.rng = rng
        self.serial = 0
        self.records: list[dict[str, Any]] = []
        for _ in range(total):
            self._insert(self._new())
            if duplicate_every and self.serial % duplicate_every == 0:
                self._insert(dict(self.records[-1]))
        self.initial = {_key(r) for r in self.records}
        self.requests = 0

    def _new(self) -> dict[str, Any]:
        self.serial += 1
        t = self.rng.randrange(WINDOW.start_ms, WINDOW.end_ms)
        return {"event_type": "normal", "event_info": f"event {self.serial}", "occur_time": t}

    def _insert(self, record: dict[str, Any]) -> None:
        at = len(self.records)
        while at > 0 and self.records[at - 1]["occur_time"] > record["occur_time"]:
            at -= 1
        self.records.insert(at, record)

    def fetch_events_page(
        self, service_id: str, query: TimeWindow, offset: int, limit: int
    ) -> EventPage:
        self.requests += 1
        first = offset if self.mode is OffsetMode.RECORD else offset * limit
        events = [dict(r) for r in self.records[first : first + limit]]
        page = EventPage(service_id, offset, limit, len(self.records), len(events), events)
        for _ in range(self.shift):
            self._insert(self._new())
        return page


def _key(record: dict[str, Any]) -> tuple[int, str]:
    return record["occur_time"], record["event_info"]


def _collect(log: FakeEventLog, limit: int, mode: OffsetMode) -> set[tuple[int, str]]:
    got: set[tuple[int, str]] = set()
    for page in iter_event_pages(log, "svc", WINDOW, limit=limit, offset_mode=mode):
        got.update(_key(r) for r in page.events)
    return got


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 400),
    limit=st.integers(1, 60),
    shift=st.integers(0, 3),
    duplicate_every=st.sampled_from([0, 0, 7, 3]),
    mode=st.sampled_from(list(OffsetMode)),
    rng=st.randoms(use_true_random=False),
)
def test_the_right_mode_loses_nothing_and_ends(
    total: int,
    limit: int,
    shift: int,
    duplicate_every: int,
    mode: OffsetMode,
    rng: random.Random,
) -> None:
    log = FakeEventLog(total, mode, shift, rng, duplicate_every)
    got = _collect(log, limit, mode)
    assert log.initial <= got  # every event present at the start arrives
    assert got <= {_key(r) for r in log.records}  # and nothing that was never served
    # ends: at most one page per `limit` records of the final log, plus the closing page
    assert log.requests <= len(log.records) // limit + 2


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 400),
    limit=st.integers(3, 60),
    shift=st.integers(0, 1),
    configured=st.sampled_from(list(OffsetMode)),
    rng=st.randoms(use_true_random=False),
)
def test_the_wrong_mode_fails_or_happens_to_read_everything(
    total: int,
    limit: int,
    shift: int,
    configured: OffsetMode,
    rng: random.Random,
) -> None:
    """Never a quietly wrong set: a PagingError, or (a window that fits one page) every event."""
    served_as = OffsetMode.RECORD if configured is OffsetMode.PAGE else OffsetMode.PAGE
    shift = shift if limit >= 4 else 0
    log = FakeEventLog(total, served_as, shift, rng)
    try:
        got = _collect(log, limit, configured)
    except PagingError as exc:
        assert "svc" in str(exc) and str(configured) in str(exc)
        assert "MODELARTS_OFFSET_MODE" in str(exc)
        return
    assert log.initial <= got


@pytest.mark.parametrize("mode", list(OffsetMode))
def test_a_log_longer_than_the_page_cap_is_an_error_not_a_loop(mode: OffsetMode) -> None:
    log = FakeEventLog(100, mode, 0, random.Random(1))
    with pytest.raises(PagingError, match="more than 5 pages"):
        _collect_capped(log, mode)


def _collect_capped(log: FakeEventLog, mode: OffsetMode) -> None:
    for _ in iter_event_pages(log, "svc", WINDOW, limit=10, offset_mode=mode, max_pages=5):
        pass


@pytest.mark.parametrize(
    ("served_as", "configured", "message"),
    [
        (OffsetMode.RECORD, OffsetMode.PAGE, "overlap"),
        (OffsetMode.PAGE, OffsetMode.RECORD, "gap"),
    ],
)
def test_a_wrong_mode_names_service_window_and_mode(
    served_as: OffsetMode, configured: OffsetMode, message: str
) -> None:
    log = FakeEventLog(95, served_as, 0, random.Random(2))
    with pytest.raises(PagingError, match=message) as caught:
        _collect(log, 10, configured)
    text = str(caught.value)
    assert "service svc" in text and str(WINDOW) in text and f"({configured} offsets" in text


def test_a_page_longer_than_the_limit_is_an_error() -> None:
    class TooLong(FakeEventLog):
        def fetch_events_page(
            self, service_id: str, query: TimeWindow, offset: int, limit: int
        ) -> EventPage:
            page = super().fetch_events_page(service_id, query, offset, limit + 1)
            return EventPage(service_id, offset, limit, page.total_count, page.count, page.events)

    with pytest.raises(PagingError, match="more than the limit"):
        _collect(TooLong(50, OffsetMode.PAGE, 0, random.Random(3)), 10, OffsetMode.PAGE)
