"""The v2 pager against an in-process fake of the events call whose records move between page
requests: whatever grows, enters or is added, and whichever time the window filters on, every
record the listing held when paging began is found, with a count no older than then."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.source.records import fetch_service_records
from pipelines.source.stats import ExtractionStats

SINCE = 1_700_000_000_000
SERVICE = "svc"


class FakeRecords:
    """The v2 events call of one service: start_time (no end) on `time_filter`, sorted by
    sort_key ASC (ties by id), offset a multiple of limit; `moves` records change after each
    page: a count grows (update_at to now), or a new record is created (now)."""

    def __init__(self, total: int, moves: int, time_filter: str, rng: random.Random):
        self.rng, self.moves, self.time_filter = rng, moves, time_filter
        self.now = SINCE + 10_000_000
        self.records: dict[str, dict[str, Any]] = {}
        for n in range(total):  # created before and after SINCE, some updated since
            create = SINCE + rng.randrange(-5_000_000, 5_000_000)
            update = create + rng.choice((0, 0, rng.randrange(0, 4_000_000)))
            self._add(f"r{n:05d}", create, update, rng.randrange(1, 5))
        self.stats = ExtractionStats()
        self.initial = {
            i: r["event_count"] for i, r in self.records.items() if r[time_filter] >= SINCE
        }
        self.requests = 0

    def _add(self, rid: str, create: int, update: int, count: int) -> None:
        self.records[rid] = {
            "id": rid, "service_id": SERVICE, "service_version_id": "v", "event_type": "NORMAL",
            "event_info": f"text {rid}", "event_info_cn": "事件", "event_count": count,
            "create_at": create, "update_at": update,
        }  # fmt: skip

    def get_v2_json(self, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        self.requests += 1
        limit, offset = params["limit"], params["offset"]
        assert offset % limit == 0 and params["sort_dir"] == "ASC"
        key = params["sort_key"]
        chosen = sorted(
            (r for r in self.records.values() if r[self.time_filter] >= params["start_time"]),
            key=lambda r: (r[key], r["id"]),
        )
        body = {"total": len(chosen), "data": [dict(r) for r in chosen[offset : offset + limit]]}
        for _ in range(self.moves):  # then the records move
            self.now += 1
            if self.records and self.rng.random() < 0.8:
                record = self.records[self.rng.choice(sorted(self.records))]
                record["event_count"] += 1
                record["update_at"] = self.now
            else:
                self._add(f"new{self.now}", self.now, self.now, 1)
        return body


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 300),
    limit=st.integers(1, 40),
    moves=st.integers(0, 4),
    time_filter=st.sampled_from(["create_at", "update_at"]),
    rng=st.randoms(use_true_random=False),
)
def test_no_record_is_missed_however_records_move(
    total: int, limit: int, moves: int, time_filter: str, rng: random.Random
) -> None:
    source = FakeRecords(total, moves, time_filter, rng)
    found = fetch_service_records(source, SERVICE, SINCE, limit)
    assert not found.rejected
    for rid, count in source.initial.items():
        assert rid in found.records, rid
        assert found.records[rid].event_count >= count
        assert found.records[rid].event_count <= source.records[rid]["event_count"]
    # every record created since SINCE, whichever time the window filters on
    created = {i for i, r in source.records.items() if SINCE <= r["create_at"] < SINCE + 5_000_000}
    assert created <= set(found.records)
    # the fewest requests when nothing moves: ceil(total / limit), one for none
    if moves == 0:
        assert source.requests == max(1, -(-len(source.initial) // limit))
