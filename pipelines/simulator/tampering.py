"""Records the real API sometimes serves: repeated events and malformed records."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pipelines.simulator.hostile import RawRecord
from pipelines.simulator.models import Event

MALFORMED_KINDS = (
    "occur_time_string",
    "occur_time_float",
    "occur_time_negative",
    "occur_time_missing",
    "event_type_unknown",
    "event_info_null",
    "event_info_number",
)


@dataclass(frozen=True)
class MalformedRecord:
    """A record no extractor should load. sort_time places it in the log; raw is what is served."""

    sort_time: int
    kind: str
    raw: dict[str, Any]

    @property
    def event_type(self) -> object:
        return self.raw.get("event_type")


StoredRecord = Event | MalformedRecord | RawRecord


def make_malformed(base: Event, rng: random.Random) -> MalformedRecord:
    """A broken record next to `base` (its text differs, so it never folds into a valid event)."""
    kind = rng.choice(MALFORMED_KINDS)
    raw: dict[str, Any] = {
        "event_type": base.event_type,
        "event_info": f"malformed record: {kind}",
        "occur_time": base.occur_time,
    }
    if kind == "occur_time_string":
        raw["occur_time"] = "2026-01-01T00:00:00Z"
    elif kind == "occur_time_float":
        raw["occur_time"] = base.occur_time + 0.5
    elif kind == "occur_time_negative":
        raw["occur_time"] = -base.occur_time
    elif kind == "occur_time_missing":
        del raw["occur_time"]
    elif kind == "event_type_unknown":
        raw["event_type"] = "warning"
    elif kind == "event_info_null":
        raw["event_info"] = None
    else:
        raw["event_info"] = 404
    if rng.random() < 0.3:
        raw["extra_field"] = {"note": "not in the documented schema"}
    return MalformedRecord(base.occur_time, kind, raw)


def tamper(
    events: list[Event],
    rng: random.Random,
    duplicate_rate: float,
    malformed_rate: float,
) -> tuple[list[StoredRecord], int, int]:
    """The records to serve: events with repeats and malformed records mixed in, counts of each."""
    if duplicate_rate <= 0 and malformed_rate <= 0:
        return list(events), 0, 0
    out: list[StoredRecord] = []
    duplicates = malformed = 0
    for event in events:
        out.append(event)
        if duplicate_rate > 0 and rng.random() < duplicate_rate:
            out.append(event)
            duplicates += 1
        if malformed_rate > 0 and rng.random() < malformed_rate:
            out.append(make_malformed(event, rng))
            malformed += 1
    return out, duplicates, malformed
