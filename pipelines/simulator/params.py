"""Query parameters of the ModelArts listing calls, validated like the real API (400 on misuse)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LIMIT = 1000


class BadParameter(ValueError):
    """A query parameter the API rejects with 400 ModelArts.0101."""


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values or values[0] == "":
        return None
    return values[0]


def integer_param(query: dict[str, list[str]], name: str) -> int | None:
    raw = _one(query, name)
    if raw is None:
        return None
    try:
        return int(raw, 10)
    except ValueError:
        raise BadParameter(f"Invalid parameter {name}: {raw!r} is not an integer.") from None


@dataclass(frozen=True)
class Paging:
    offset: int
    limit: int

    def first_record(self, offset_mode: str) -> int:
        """The index of the page's first record: offset is a page index unless mode is record."""
        return self.offset if offset_mode == "record" else self.offset * self.limit


def parse_paging(query: dict[str, list[str]]) -> Paging:
    offset = integer_param(query, "offset")
    limit = integer_param(query, "limit")
    offset = 0 if offset is None else offset
    limit = MAX_LIMIT if limit is None else limit
    if offset < 0:
        raise BadParameter(f"Invalid parameter offset: {offset} must not be negative.")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter(f"Invalid parameter limit: {limit} must be within 1 and {MAX_LIMIT}.")
    return Paging(offset, limit)


@dataclass(frozen=True)
class EventQuery:
    event_type: str | None
    start_time: int | None
    end_time: int | None
    paging: Paging
    descending: bool


def parse_event_query(query: dict[str, list[str]]) -> EventQuery:
    event_type = _one(query, "event_type")
    if event_type not in (None, "normal", "abnormal"):
        raise BadParameter(f"Invalid parameter event_type: {event_type!r}.")
    sort_by = _one(query, "sort_by") or "occur_time"
    if sort_by != "occur_time":
        raise BadParameter(f"Invalid parameter sort_by: {sort_by!r}.")
    order = _one(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise BadParameter(f"Invalid parameter order: {order!r}.")
    return EventQuery(
        event_type=event_type,
        start_time=integer_param(query, "start_time"),
        end_time=integer_param(query, "end_time"),
        paging=parse_paging(query),
        descending=order == "desc",
    )
