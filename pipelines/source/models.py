"""Typed records at the boundary of the ModelArts API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class ServiceEvent(NamedTuple):
    """One event of a service's log, validated.

    A named tuple, not a frozen dataclass: one is built per event fetched, and a frozen
    dataclass costs several times as much to build (bench/README.md, "Figures behind comments
    in the code"). Its first four fields are the row the loader copies; `repaired` takes part
    in equality, as in any tuple.
    """

    service_id: str
    occur_time: int
    event_type: str
    event_info: str
    # True when event_info had a NUL or a lone surrogate replaced by U+FFFD (see validation.py)
    repaired: bool = False


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """A record that failed validation, kept whole with the reason."""

    service_id: str
    raw: Any
    reason: str


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """One entry of the service listing."""

    service_id: str
    service_name: str | None
    status: str | None
    infer_type: str | None
    owner: str | None
    publish_at_ms: int | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of the events call, as received (events not yet validated)."""

    service_id: str
    offset: int
    limit: int
    total_count: int
    count: int
    events: list[Any]
