"""Extract and load the v2 generation over a range of days: one extraction (each new-version
service asked once, from the range's start: source/records.py), then one load per day
(warehouse/records.py), each with its transaction and audit row (generation v2).

A record belongs to the day of its create_at, which never changes. Records the API returns with
an earlier create_at (updated since the range began, where the window filters on update_at) are
merged by the first day's load: they only move forward. Records created after the range belong
to a later run and are counted as out_of_window.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from pipelines.source.client import ModelArtsClient
from pipelines.source.models import RejectedEvent
from pipelines.source.records import V2_PAGE_LIMIT, EventRecord, extract_records
from pipelines.warehouse.audit import record_failed_load
from pipelines.warehouse.records import RecordLoadResult, load_records
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

Segment = tuple[str, TimeWindow]  # (partition key, window), as ingest.Segment
# Counters of the one extraction, recorded on the range's last day (the others record 0).
_RANGE_COUNTERS = ("services", "services_missing", "requests", "retries", "token_refreshes")


@dataclass(frozen=True)
class RecordWindowReport:
    """What one day's v2 load did."""

    window: TimeWindow
    partition_key: str
    counts: dict[str, int]
    load: RecordLoadResult
    seconds: float

    def as_metadata(self) -> dict[str, int | float | str]:
        return {
            **self.counts,
            **self.load.counts(),
            "records": self.load.staged,
            "quarantined": self.load.quarantined,
            "batch_id": self.load.batch_id,
            "seconds": round(self.seconds, 3),
        }


def load_records_range(
    client: ModelArtsClient,
    engine: Engine,
    service_ids: Sequence[str],
    segments: Sequence[Segment],
    *,
    workers: int = 4,
    page_limit: int = V2_PAGE_LIMIT,
    run_id: str | None = None,
) -> list[RecordWindowReport]:
    """Fetch every v2 service's records of the range once and load them, a day at a time.

    A failed extraction loads nothing: each day gets a failed audit row (generation v2), and the
    error is raised. A failed day's load keeps the days committed before it.
    """
    if not segments:
        return []
    starts = [window.start_ms for _, window in segments]
    end_ms = segments[-1][1].end_ms
    started = time.perf_counter()
    try:
        found = extract_records(client, service_ids, starts[0], workers, page_limit)
    except Exception as exc:
        for key, window in segments:
            record_failed_load(engine, window, exc, {"run_id": run_id, "partition_key": key}, "v2")
        raise
    by_day: list[list[EventRecord]] = [[] for _ in segments]
    rejected: list[list[RejectedEvent]] = [[] for _ in segments]
    later = 0
    for service in found:
        for record in service.records.values():
            if record.create_at >= end_ms:
                later += 1
                continue
            by_day[max(0, bisect.bisect_right(starts, record.create_at) - 1)].append(record)
        rejected[0].extend(service.rejected)
    totals = client.stats.as_dict()
    log.info(
        "v2 range %s..%s: %d services, %d records in %d requests (%.2f s)",
        starts[0], end_ms, totals["services"], totals["fetched"], totals["requests"],
        time.perf_counter() - started,
    )  # fmt: skip
    reports = []
    for index, (key, window) in enumerate(segments):
        counts = {name: 0 for name in _RANGE_COUNTERS}
        counts["pages"] = 0
        counts["fetched"] = len(by_day[index]) + len(rejected[index])
        if index == len(segments) - 1:
            counts.update({name: totals[name] for name in _RANGE_COUNTERS})
            counts["pages"] = totals["pages"]
            counts["out_of_window"] = later + totals["out_of_window"]
        day_started = time.perf_counter()
        result = load_records(
            engine, window, by_day[index], rejected[index], counts,
            run_id=run_id, partition_key=key,
        )  # fmt: skip
        reports.append(
            RecordWindowReport(window, key, counts, result, time.perf_counter() - day_started)
        )
    return reports
