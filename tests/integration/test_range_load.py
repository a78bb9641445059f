"""A range of days: each service's events fetched once for the whole range, loaded per day.

Against the simulator over HTTP and a real Postgres: the API sees the minimum number of event
requests the page size allows, every day lands exactly (its own audit row and counts), the
spilled and in-memory buffers load the same rows, a rerun inserts nothing, and the lookback
hours ride on the same requests as their own load.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
import requests
from sqlalchemy import Engine

from pipelines.assets.partitions import day_windows
from pipelines.ingest import Segment, load_events_range
from pipelines.simulator.process import SimulatorInfo, running_simulator
from pipelines.source.auth import Secret, StaticToken
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.errors import ModelArtsAPIError, PagingError
from pipelines.source.extract import ExtractSettings
from pipelines.windows import TimeWindow
from tests.integration.conftest import expected_events, stored_events

pytestmark = pytest.mark.integration

PAGE_LIMIT = 10
# 8 services over 4 days ending (exclusive) 2026-11-20, dense enough for several pages each
SIM_ARGS = ["--services", "8", "--days", "4", "--seed", "5", "--end-date", "2026-11-20",
            "--static-token", "t"]  # fmt: skip


@pytest.fixture(scope="module")
def range_simulator() -> Iterator[SimulatorInfo]:
    with running_simulator(SIM_ARGS) as info:
        yield info


def _client(info: SimulatorInfo) -> ModelArtsClient:
    settings = HttpSettings()
    return ModelArtsClient(
        info.url, info.project_id, StaticToken(Secret("t")), build_session(settings), settings
    )


def _days(info: SimulatorInfo) -> list[Segment]:
    from datetime import UTC, datetime

    start = datetime.fromisoformat(info.start_date).replace(tzinfo=UTC)
    end = datetime.fromisoformat(info.end_date).replace(tzinfo=UTC)
    return list(day_windows(start, end))


def _event_requests(info: SimulatorInfo) -> int:
    stats = requests.get(f"{info.url}/_sim/stats", timeout=10).json()
    return sum(stats["requests"].get("events", {}).values())


def _batches(database_url: str) -> list[tuple[str, str, int, int, int, int]]:
    with psycopg.connect(database_url) as conn:
        return [
            (r[0], r[1], r[2], r[3], r[4], r[5])
            for r in conn.execute(
                "select partition_key, status, fetched, inserted, already_present, requests "
                "from load_batches order by window_start_ms, batch_id"
            )
        ]


@pytest.mark.parametrize("spill_bytes", [1, 64 * 1024 * 1024], ids=["spilled", "in_memory"])
def test_a_range_asks_each_service_once_per_page_and_loads_each_day_exactly(
    range_simulator: SimulatorInfo, engine: Engine, database_url: str, spill_bytes: int
) -> None:
    info = range_simulator
    service_ids = [s.service_id for s in _client(info).list_services()]
    client = _client(info)  # its counters: the events calls only
    days = _days(info)
    settings = ExtractSettings(page_limit=PAGE_LIMIT, split_threshold=None, workers=3)
    before = _event_requests(info)
    reports = load_events_range(
        client, engine, service_ids, days, settings, run_id="r1", spill_bytes=spill_bytes
    )
    used = _event_requests(info) - before

    whole = TimeWindow(days[0][1].start_ms, days[-1][1].end_ms)
    expected = expected_events(info, whole.start_ms, whole.end_ms)
    assert stored_events(database_url) == expected
    per_service = Counter(service_id for service_id, *_ in expected)
    # the minimum the page size allows: one request per PAGE_LIMIT events of a service over
    # the whole range (total_count ends the paging), one to learn a service has none
    minimum = sum(max(1, math.ceil(per_service[s] / PAGE_LIMIT)) for s in service_ids)
    assert used == minimum
    # what one window per service and day costs (the paths before issue 19)
    per_service_day = Counter((service_id, t // 86_400_000) for service_id, t, _, _ in expected)
    day_numbers = [window.start_ms // 86_400_000 for _, window in days]
    daily = sum(
        max(1, math.ceil(per_service_day[(s, d)] / PAGE_LIMIT))
        for s in service_ids
        for d in day_numbers
    )
    assert used < daily

    batches = _batches(database_url)
    assert [b[0] for b in batches] == [key for key, _ in days]
    per_day = Counter(
        date(1970, 1, 1) + timedelta(milliseconds=t) for _, t, _, _ in expected
    )  # events per UTC day
    for (key, status, fetched, inserted, present, _), report in zip(batches, reports, strict=True):
        assert status == "succeeded"
        assert fetched == inserted == per_day[date.fromisoformat(key)] > 0
        assert present == 0 and report.load.inserted == inserted
    # the range's requests are recorded once, on its last day
    assert [b[5] for b in batches] == [0] * (len(days) - 1) + [used]

    again = load_events_range(
        _client(info), engine, service_ids, days, settings, run_id="r2", spill_bytes=spill_bytes
    )
    assert [r.load.inserted for r in again] == [0] * len(days)
    assert [r.load.already_present for r in again] == [r.load.inserted for r in reports]
    assert stored_events(database_url) == expected


def test_the_lookback_hours_ride_on_the_range_requests_as_their_own_load(
    range_simulator: SimulatorInfo, engine: Engine, database_url: str
) -> None:
    info = range_simulator
    client = _client(info)
    service_ids = [s.service_id for s in client.list_services()]
    days = _days(info)
    first_day, first = days[1]
    late = TimeWindow(first.start_ms - 6 * 3_600_000, first.start_ms)
    segments = [(first_day, late), *days[1:]]
    settings = ExtractSettings(page_limit=PAGE_LIMIT, split_threshold=None)
    reports = load_events_range(client, engine, service_ids, segments, settings)

    assert stored_events(database_url) == expected_events(info, late.start_ms, days[-1][1].end_ms)
    assert reports[0].window == late
    assert reports[0].load.inserted == len(expected_events(info, late.start_ms, late.end_ms)) > 0
    batches = _batches(database_url)
    assert [b[0] for b in batches] == [first_day] + [key for key, _ in days[1:]]


def test_segments_must_be_consecutive(engine: Engine, range_simulator: SimulatorInfo) -> None:
    days = _days(range_simulator)
    with pytest.raises(ValueError, match="consecutive"):
        load_events_range(
            _client(range_simulator), engine, ["s"], [days[0], days[2]], ExtractSettings()
        )


def test_a_failed_extraction_loads_nothing_and_marks_every_day_failed(
    range_simulator: SimulatorInfo, engine: Engine, database_url: str
) -> None:
    info = range_simulator
    service_ids = [s.service_id for s in _client(info).list_services()]
    days = _days(info)
    # one page per window allowed, and every service holds more than one page over the range
    settings = ExtractSettings(page_limit=PAGE_LIMIT, split_threshold=None, max_pages_per_window=1)
    with pytest.raises(PagingError, match="more than 1 pages"):
        load_events_range(_client(info), engine, service_ids, days, settings, run_id="r3")
    assert stored_events(database_url) == set()
    with psycopg.connect(database_url) as conn:
        batches = conn.execute(
            "select partition_key, status, error from load_batches order by window_start_ms"
        ).fetchall()
    assert [b[0] for b in batches] == [key for key, _ in days]
    assert {b[1] for b in batches} == {"failed"}
    assert all("extraction failed: PagingError" in b[2] for b in batches)


class _FailingAfter(ModelArtsClient):
    """A client whose pages of one service fail from a time on, as an API that breaks mid-run
    does; it records the windows asked for."""

    def __init__(self, info: SimulatorInfo, victim: str, from_ms: int) -> None:
        settings = HttpSettings(max_retries=0)
        super().__init__(
            info.url, info.project_id, StaticToken(Secret("t")), build_session(settings), settings
        )
        self.victim, self.from_ms = victim, from_ms
        self.asked: list[TimeWindow] = []

    def fetch_events_page(self, service_id: str, query: TimeWindow, offset: int, limit: int) -> Any:
        self.asked.append(query)
        page = super().fetch_events_page(service_id, query, offset, limit)
        first = page.events[0]["occur_time"] if page.events else None
        if service_id == self.victim and first is not None and first >= self.from_ms:
            raise ModelArtsAPIError(400, "ModelArts.0101", "broken from here on", "test")
        return page


def test_a_range_failing_half_way_keeps_its_complete_days_and_a_retry_fetches_the_rest(
    range_simulator: SimulatorInfo, engine: Engine, database_url: str
) -> None:
    info = range_simulator
    service_ids = [s.service_id for s in _client(info).list_services()]
    days = _days(info)
    # the last service breaks in the middle of the third day; one worker: the others are done
    third = days[2][1]
    failing = _FailingAfter(info, service_ids[-1], third.start_ms + 12 * 3_600_000)
    settings = ExtractSettings(page_limit=PAGE_LIMIT, split_threshold=None, workers=1)
    with pytest.raises(ModelArtsAPIError, match="broken from here on"):
        load_events_range(failing, engine, service_ids, days, settings, run_id="half")
    kept_until = third.start_ms
    assert stored_events(database_url) == expected_events(info, days[0][1].start_ms, kept_until)
    statuses = [(key, status) for key, status, *_ in _batches(database_url)]
    assert statuses == [(days[0][0], "succeeded"), (days[1][0], "succeeded"),
                        (days[2][0], "failed"), (days[3][0], "failed")]  # fmt: skip

    # the step retry (the same run) fetches from the first day not loaded, and lands the rest
    retry = _FailingAfter(info, "none", 0)
    reports = load_events_range(retry, engine, service_ids, days, settings, run_id="half")
    assert [r.window for r in reports] == [window for _, window in days[2:]]
    assert min(q.start_ms for q in retry.asked) == third.start_ms - 1  # the 1 ms edge margin
    whole = TimeWindow(days[0][1].start_ms, days[-1][1].end_ms)
    assert stored_events(database_url) == expected_events(info, whole.start_ms, whole.end_ms)
    # every day's rows were inserted once: by the first attempt or by the retry
    assert sum(r.load.already_present for r in reports) == 0
    # another run fetches everything again (a rerun is not a retry)
    again = load_events_range(_client(info), engine, service_ids, days, settings, run_id="other")
    assert len(again) == len(days) and sum(r.load.inserted for r in again) == 0


class _WatchingLoads(ModelArtsClient):
    """A client that, before each events request it sends, reads how many days of the range
    have committed (their audit rows, through a connection of its own)."""

    def __init__(self, info: SimulatorInfo, database_url: str) -> None:
        settings = HttpSettings()
        super().__init__(
            info.url, info.project_id, StaticToken(Secret("t")), build_session(settings), settings
        )
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._lock = threading.Lock()
        self.committed_at_request: list[int] = []

    def fetch_events_page(self, service_id: str, query: TimeWindow, offset: int, limit: int) -> Any:
        with self._lock:
            row = self._conn.execute(
                "select count(*) from load_batches where status = 'succeeded'"
            ).fetchone()
            assert row is not None
            self.committed_at_request.append(row[0])
        return super().fetch_events_page(service_id, query, offset, limit)


def test_a_range_commits_its_first_days_while_later_ones_are_still_being_fetched(
    engine: Engine, database_url: str
) -> None:
    """The days load as soon as every service was fetched beyond their end, not after the
    whole extraction: requests are still sent after the first day committed, and the API still
    sees each service paged once over the range (no extra request)."""
    with running_simulator([*SIM_ARGS, "--latency-ms", "10"]) as info:
        service_ids = [s.service_id for s in _client(info).list_services()]
        days = _days(info)
        client = _WatchingLoads(info, database_url)
        settings = ExtractSettings(page_limit=PAGE_LIMIT, split_threshold=None, workers=2)
        reports = load_events_range(client, engine, service_ids, days, settings, run_id="o1")
        whole = TimeWindow(days[0][1].start_ms, days[-1][1].end_ms)
        expected = expected_events(info, whole.start_ms, whole.end_ms)
    assert stored_events(database_url) == expected
    assert [r.window for r in reports] == [window for _, window in days]
    seen = client.committed_at_request
    # the last requests were sent with days already committed: the loads did not wait
    assert seen[-1] >= 1, seen
    # days commit in order while requests go on: the count only grows, and only the last day
    # (which waits for the extraction's end, to record its counters) is left at the end
    assert seen == sorted(seen) and seen[-1] <= len(days) - 1
    per_service = Counter(service_id for service_id, *_ in expected)
    assert len(seen) == sum(max(1, math.ceil(per_service[s] / PAGE_LIMIT)) for s in service_ids)
    assert {status for _, status, *_ in _batches(database_url)} == {"succeeded"}
