"""The v2 ModelArts calls (new-version services): list services, one service, its event records.

Paging as the vendor documents it: `limit` 1-500 (default 10), `offset` a record offset that must
be a multiple of `limit`, answers `{current, pages, size, total, data}`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from pipelines.simulator.params import BadParameter, integer_param
from pipelines.simulator.records import EVENT_TYPES
from pipelines.simulator.responses import Response, bad_parameter, modelarts_error
from pipelines.simulator.state import SimulatorState

V2_MAX_LIMIT = 500
V2_DEFAULT_LIMIT = 10
REFUSED_KEY_CHARACTERS = set("'\";%_*!@#$&\\")
SORT_KEYS = ("create_at", "update_at")


@dataclass(frozen=True)
class V2Paging:
    offset: int
    limit: int

    def page(self, items: list[Any]) -> bytes:
        total = len(items)
        return orjson.dumps(
            {
                "current": self.offset // self.limit,
                "pages": -(-total // self.limit),
                "size": self.limit,
                "total": total,
                "data": items[self.offset : self.offset + self.limit],
            }
        )


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values and values[0] != "" else None


def parse_v2_paging(query: dict[str, list[str]]) -> V2Paging:
    limit = integer_param(query, "limit")
    offset = integer_param(query, "offset")
    limit = V2_DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= V2_MAX_LIMIT:
        raise BadParameter(f"Invalid parameter limit: {limit} must be within 1 and {V2_MAX_LIMIT}.")
    if offset < 0 or offset % limit:
        raise BadParameter(
            f"Invalid parameter offset: {offset} must be a non-negative multiple of limit."
        )
    return V2Paging(offset, limit)


def _sorting(query: dict[str, list[str]], keys: tuple[str, ...], default: str) -> tuple[str, bool]:
    sort_key = _one(query, "sort_key") or default
    if sort_key not in keys:
        raise BadParameter(f"Invalid parameter sort_key: {sort_key!r}.")
    sort_dir = _one(query, "sort_dir") or "DESC"
    if sort_dir not in ("ASC", "DESC"):
        raise BadParameter(f"Invalid parameter sort_dir: {sort_dir!r}.")
    return sort_key, sort_dir == "DESC"


def list_services(state: SimulatorState, query: dict[str, list[str]]) -> Response:
    try:
        paging = parse_v2_paging(query)
        sort_key, descending = _sorting(query, ("create_at", "update_at", "name"), "create_at")
    except BadParameter as exc:
        return bad_parameter(str(exc))
    services = state.records.services()
    status, name = _one(query, "status"), _one(query, "name")
    if status is not None:
        services = [s for s in services if s["status"] == status]
    if name is not None:
        services = [s for s in services if name.lower() in s["name"].lower()]
    services.sort(key=lambda s: (s[sort_key], s["id"]), reverse=descending)
    return Response(200, paging.page(services))


def one_service(state: SimulatorState, raw_service_id: str) -> Response:
    service_id = unquote(raw_service_id)
    found = state.records.service(service_id)
    if found is None:
        return modelarts_error(404, "ModelArts.3502", f"Service {service_id} not found")
    return Response(200, orjson.dumps(found))


def service_events(
    state: SimulatorState, raw_service_id: str, query: dict[str, list[str]], rng: random.Random
) -> Response:
    """One page of a service's records; then, at growth_rate, one of its records grows."""
    service_id = unquote(raw_service_id)
    try:
        paging = parse_v2_paging(query)
        sort_key, descending = _sorting(query, SORT_KEYS, "update_at")
        event_type = _one(query, "event_type")
        if event_type is not None and event_type not in EVENT_TYPES:
            raise BadParameter(f"Invalid parameter event_type: {event_type!r}.")
        info_key = _one(query, "event_info_key")
        if info_key is not None and REFUSED_KEY_CHARACTERS & set(info_key):
            raise BadParameter("Invalid parameter event_info_key: illegal characters.")
        start_time = integer_param(query, "start_time")
        end_time = integer_param(query, "end_time")
    except BadParameter as exc:
        return bad_parameter(str(exc))
    records = state.records.listing(
        service_id,
        event_type=event_type,
        info_key=info_key,
        start_time=start_time,
        end_time=end_time,
        sort_key=sort_key,
        descending=descending,
    )
    if records is None:
        return modelarts_error(404, "ModelArts.3502", f"Service {service_id} not found")
    body = paging.page(records)
    state.stats.count_served("pages_served")
    rate = state.records.growth_rate
    if state.dice.chance(state.config.growth_rate if rate is None else rate):
        state.records.grow(service_id, rng)
        state.stats.count_fault("growth")
    return Response(200, body)
