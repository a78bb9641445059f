"""Endpoints for tests and benchmarks under /_sim/ (no auth): ground truth, expectations, stats."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import unquote

import orjson

from pipelines.simulator.models import Event
from pipelines.simulator.params import BadParameter, integer_param
from pipelines.simulator.responses import Response, json_response
from pipelines.simulator.state import SimulatorState
from pipelines.simulator.store import expected_events
from pipelines.simulator.tampering import StoredRecord
from pipelines.simulator.truth import truth_as_of


def _date(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def info(state: SimulatorState) -> dict[str, Any]:
    """What a demo or test needs to connect, and the extent of the data."""
    history, config = state.history, state.config
    return {
        "project_id": config.project_id,
        "username": config.username,
        "password": config.password,
        "domain": config.domain,
        "region": config.region,
        "access_key": config.access_key,
        "secret_key": config.secret_key,
        "start_ms": history.start_ms,
        "end_ms": history.end_ms,
        "start_date": _date(history.start_ms),
        "end_date": _date(history.end_ms),
        "services": len(state.store.services()),
        "events": history.event_count,
        "records": state.store.record_count(),
        "offset_mode": config.offset_mode,
        "api": config.api,
        "v2_time_filter": config.v2_time_filter,
        "v2_services": len(state.records.service_ids()),
        "v2_records": state.records.record_count(),
    }


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def get(state: SimulatorState, path: str, query: dict[str, list[str]]) -> Response:
    try:
        if path == "/_sim/info":
            return json_response(200, info(state))
        if path == "/_sim/stats":
            return json_response(200, state.stats.as_dict())
        if path == "/_sim/truth":
            as_of = integer_param(query, "as_of")
            history = state.history
            attempts = truth_as_of(history, history.end_ms - 1 if as_of is None else as_of)
            return Response(200, orjson.dumps([a.to_dict() for a in attempts]))
        if path == "/_sim/records":
            # the v2 records as they are now (create_at in the inclusive window), the malformed
            # ones, and which services are v2: the truth at the moment of asking
            expected = state.records.expected_records(
                integer_param(query, "start_time"), integer_param(query, "end_time")
            )
            body = {
                **expected,
                "v2_service_ids": state.records.service_ids(),
                "grown": state.records.grown,
            }
            return Response(200, orjson.dumps(body))
        if path == "/_sim/expected":
            windows = state.store.window(
                integer_param(query, "start_time"), integer_param(query, "end_time")
            )
            return Response(200, orjson.dumps(expected_events(windows)))
    except BadParameter as exc:
        return _error(400, str(exc))
    return _error(404, f"no admin endpoint {path}")


def _parse_events(data: Any) -> tuple[str, list[StoredRecord]]:
    service_id = data["service_id"]
    if not isinstance(service_id, str):
        raise ValueError("service_id must be a string")
    records: list[StoredRecord] = []
    for item in data["events"]:
        t, event_type, text = item["occur_time"], item["event_type"], item["event_info"]
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            raise ValueError("occur_time must be a non-negative integer")
        if event_type not in ("normal", "abnormal") or not isinstance(text, str):
            raise ValueError("event_type must be normal|abnormal and event_info a string")
        records.append(Event(t, event_type, text))
    return service_id, records


def post(state: SimulatorState, path: str, body: bytes) -> Response:
    if path == "/_sim/growth":  # {"rate": 0.0}: the v2 records stop (or start) growing
        try:
            rate = float(orjson.loads(body)["rate"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            return _error(400, f"bad body: {exc}")
        if not 0.0 <= rate <= 1.0:
            return _error(400, "rate must be within 0..1")
        state.records.growth_rate = rate
        return json_response(200, {"growth_rate": rate})
    if path == "/_sim/events":
        try:
            service_id, records = _parse_events(orjson.loads(body))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            return _error(400, f"bad body: {exc}")
        if not state.store.append(service_id, records):
            return _error(404, f"unknown service {service_id}")
        return json_response(200, {"appended": len(records)})
    parts = path.split("/")
    if len(parts) == 5 and parts[2] == "services" and parts[4] == "delete":
        service_id = unquote(parts[3])
        if not state.store.delete(service_id):
            return _error(404, f"unknown service {service_id}")
        return json_response(200, {"deleted": service_id})
    return _error(404, f"no admin endpoint {path}")
