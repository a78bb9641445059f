"""The ModelArts calls: list services and page one service's event log."""

from __future__ import annotations

import logging
from urllib.parse import unquote

import orjson

from pipelines.simulator import vocabulary as v
from pipelines.simulator.hostile import BAD_ANSWERS, HOSTILE_SERVICE_ID, bad_answer_body
from pipelines.simulator.models import Event
from pipelines.simulator.params import BadParameter, EventQuery, parse_event_query, parse_paging
from pipelines.simulator.responses import Response, bad_parameter, modelarts_error
from pipelines.simulator.state import SimulatorState

log = logging.getLogger(__name__)

JSON = "application/json"


def list_services(state: SimulatorState, query: dict[str, list[str]]) -> Response:
    try:
        paging = parse_paging(query)
    except BadParameter as exc:
        return bad_parameter(str(exc))
    services = state.store.services()
    if state.config.hostile:  # the listing names the hostile service twice
        services += [s for s in services if s.service_id == HOSTILE_SERVICE_ID]
    first = paging.first_record(state.config.offset_mode)
    page = services[first : first + paging.limit]
    body = orjson.dumps(
        {
            "total_count": len(services),
            "count": len(page),
            "services": [s.to_dict() for s in page],
        }
    )
    return Response(200, body)


def service_events(
    state: SimulatorState, raw_service_id: str, query: dict[str, list[str]]
) -> Response:
    """One page of events; may then let a new event arrive inside the window (arrival_rate)."""
    service_id = unquote(raw_service_id)
    try:
        q = parse_event_query(query)
    except BadParameter as exc:
        return bad_parameter(str(exc))
    service = state.store.service(service_id)
    page = state.store.page(
        service_id,
        q.event_type,
        q.start_time,
        q.end_time,
        q.paging.first_record(state.config.offset_mode),
        q.paging.limit,
        q.descending,
    )
    if service is None or page is None:
        return modelarts_error(404, "ModelArts.3502", f"Service {service_id} not found")
    if state.config.hostile_answers and service_id in BAD_ANSWERS:
        body, content_type = bad_answer_body(
            BAD_ANSWERS[service_id], service, q.paging.limit, state.history.start_ms + 3_600_000
        )
        return Response(200, body, content_type=content_type)
    body = b"".join(
        (
            b'{"service_name":',
            orjson.dumps(service.service_name),
            b',"total_count":',
            str(page.total_count).encode(),
            b',"service_id":',
            orjson.dumps(service.service_id),
            b',"count":',
            str(len(page.chunks)).encode(),
            b',"events":[',
            b",".join(page.chunks),
            b"]}",
        )
    )
    state.stats.count_served("pages_served")
    if state.dice.chance(state.config.arrival_rate):
        _arrive(state, service_id, q)
    return Response(200, body)


def _arrive(state: SimulatorState, service_id: str, q: EventQuery) -> None:
    """A late event near the window's end, so total_count grows while the window is paged."""
    end = q.end_time if q.end_time is not None else state.history.end_ms - 1
    t = end - state.dice.randint(0, 60_000)
    if q.start_time is not None:
        t = max(t, q.start_time)
    kind = state.dice.choice((0, 1))
    if kind == 0:
        event = Event(t, v.ABNORMAL, v.instance_restarted(f"late arrival {t}"))
    else:
        event = Event(t, v.NORMAL, v.scale_instances(2, 3))
    if state.store.append(service_id, [event]):
        state.stats.count_fault("arrival")
        log.debug("arrival in %s at %d", service_id, t)
