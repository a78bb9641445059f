"""The response value handlers return, and the error bodies of the API family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, orjson.dumps(data), headers=headers or {})


def modelarts_error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error_code": code, "error_msg": message})


def api_not_published() -> Response:
    """The gateway's answer to a route it does not publish (APIG.0101), e.g. /v1 services in a
    region where old-version services are discontinued."""
    return modelarts_error(
        404, "APIG.0101", "The API does not exist or has not been published in the environment."
    )


def bad_parameter(message: str) -> Response:
    return modelarts_error(400, "ModelArts.0101", message)


def token_must_be_updated() -> Response:
    return modelarts_error(401, "APIG.0307", "The token must be updated.")


def throttled(retry_after_s: int) -> Response:
    return Response(
        429,
        orjson.dumps({"error_code": "APIG.0308", "error_msg": "The request is throttled."}),
        headers={"Retry-After": str(retry_after_s)},
    )


_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def gateway_error_json(status: int) -> Response:
    return modelarts_error(status, f"APIG.{status}", _REASONS.get(status, "Server Error"))


def gateway_error_html(status: int) -> Response:
    reason = _REASONS.get(status, "Server Error")
    html = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Response(status, html.encode(), content_type="text/html")
