"""HTTP/1.1 keep-alive server of the simulated IAM and ModelArts calls, with fault injection.

Each response is written in one piece (head and body together), so keep-alive connections never
wait on Nagle's algorithm; event pages are joins of records encoded once (see store.py).

Its throughput is measured by bench/bench_simulator.py (figures in bench/README.md): the client
side, which parses each page, is the limit, not this server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pipelines.simulator import admin, api, v2api
from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.iam import issue_token
from pipelines.simulator.keys import metadata_keys, metadata_token, signature_refused
from pipelines.simulator.models import History
from pipelines.simulator.responses import (
    Response,
    api_not_published,
    gateway_error_html,
    gateway_error_json,
    json_response,
    modelarts_error,
    throttled,
    token_must_be_updated,
)
from pipelines.simulator.state import SimulatorState, build_state
from pipelines.source import signer

log = logging.getLogger(__name__)

DROPPED = 0  # the status counted for a dropped connection


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections end eventually
    server: SimulatorServer

    def setup(self) -> None:
        super().setup()
        self.server.state.stats.count_served("connections")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        body = self._read_body()
        kind = "unknown"
        if state.config.latency_s and not split.path.startswith("/_sim/"):
            time.sleep(state.config.latency_s)  # a real region's round trip (config.py)
        try:
            if split.path.startswith("/_sim/"):
                kind = "admin"
                if method == "GET":
                    response = admin.get(state, split.path, query)
                else:
                    response = admin.post(state, split.path, body)
            elif split.path == "/v3/auth/tokens" and state.config.iam_faults:
                self._faulted("iam", lambda: self._iam(method, body), slow_after=True)
                return
            elif split.path == "/v3/auth/tokens":
                kind = "iam"
                response = self._iam(method, body)
            elif split.path == "/meta-data/latest/api/token":
                kind = "metadata"
                response = metadata_token(state.keys, method, dict(self.headers.items()))
            elif split.path == "/openstack/latest/securitykey":
                kind = "metadata"
                response = metadata_keys(state.keys, method, dict(self.headers.items()))
                if response.status == 200:
                    state.stats.count_served("temporary_keys_issued")
            elif split.path.startswith("/v1/"):
                self._modelarts(method, split.path, query)
                return
            elif split.path.startswith("/v2/"):
                self._modelarts_v2(method, split.path, query)
                return
            else:
                response = json_response(404, {"error": f"no route {split.path}"})
        except Exception:
            log.exception("simulator failed on %s %s", method, self.path)
            response = modelarts_error(500, "ModelArts.0001", "simulator internal error")
        self._send(kind, response)

    def _iam(self, method: str, body: bytes) -> Response:
        if method != "POST":
            return json_response(405, {"error": "use POST"})
        response = issue_token(body, self.server.state.config, self.server.state.tokens)
        if response.status == 201:
            self.server.state.stats.count_served("tokens_issued")
        return response

    def _modelarts(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        parts = path.split("/")
        if self.server.state.config.v1_retired:
            # a region whose gateway no longer publishes the old-version API answers as for
            # any unpublished route
            self._send("unknown", api_not_published())
            return
        if len(parts) == 6 and parts[3] == "services" and parts[5] == "events":
            kind = "events"
        elif len(parts) == 4 and parts[3] == "services":
            kind = "services"
        else:
            self._send("unknown", modelarts_error(404, "ModelArts.0002", f"no API {path}"))
            return
        self._faulted(kind, lambda: self._answer(kind, method, parts, query))

    def _modelarts_v2(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        """The v2 calls, behind the same faults, auth and project check as v1's."""
        parts = path.split("/")
        if len(parts) == 6 and parts[3] == "services" and parts[5] == "events":
            kind = "v2_events"
        elif len(parts) == 5 and parts[3] == "services":
            kind = "v2_service"
        elif len(parts) == 4 and parts[3] == "services":
            kind = "v2_services"
        else:
            self._send("unknown", modelarts_error(404, "ModelArts.0002", f"no API {path}"))
            return
        self._faulted(kind, lambda: self._answer(kind, method, parts, query))

    def _faulted(self, kind: str, answer: Callable[[], Response], slow_after: bool = False) -> None:
        """`answer()` sent, unless a fault is drawn. A slow answer waits before it is made
        (ModelArts: a token checked late), or with `slow_after` after (IAM: a token that arrives
        already old)."""
        state = self.server.state
        fault = state.dice.draw_fault()
        if fault is not None:
            state.stats.count_fault(fault)
        if fault == "drop":
            state.stats.count_request(kind, DROPPED)
            self.close_connection = True
            return
        if fault == "slow" and not slow_after:
            time.sleep(state.config.slow_s)
        response = self._faulty_response(fault)
        if response is None:
            response = answer()
        if fault == "slow" and slow_after:
            time.sleep(state.config.slow_s)
        self._send(kind, response, truncate=fault == "truncate")

    def _faulty_response(self, fault: str | None) -> Response | None:
        dice = self.server.state.dice
        if fault == "throttle":
            return throttled(self.server.state.config.retry_after_s)
        if fault == "error_json":
            return gateway_error_json(dice.choice((500, 502, 503)))
        if fault == "error_html":
            return gateway_error_html(dice.choice((500, 502, 503)))
        return None

    def _answer(
        self, kind: str, method: str, parts: list[str], query: dict[str, list[str]]
    ) -> Response:
        state = self.server.state
        authorization = self.headers.get("Authorization")
        if authorization is not None:
            refused = state.keys.verify(method, self.path, dict(self.headers.items()), b"")
            if refused is not None:
                return signature_refused(refused)
            parsed = signer.parse_authorization(authorization)
            caller = f"ak:{parsed[0] if parsed else '-'}"
        elif not state.tokens.is_valid(self.headers.get("X-Auth-Token")):
            return token_must_be_updated()
        else:
            caller = f"user:{state.config.username}"
        over_quota = state.quota.refuse(caller)  # per user, after authentication
        if over_quota is not None:
            state.stats.count_fault("quota")
            return over_quota
        if parts[2] != state.config.project_id:
            return modelarts_error(404, "ModelArts.0104", f"Project {parts[2]} not found")
        if method != "GET":
            return modelarts_error(405, "ModelArts.0105", f"method {method} not allowed")
        if kind == "services":
            return api.list_services(state, query)
        if kind == "v2_services":
            return v2api.list_services(state, query)
        if kind == "v2_service":
            return v2api.one_service(state, parts[4])
        if kind == "v2_events":
            return v2api.service_events(state, parts[4], query, state.growth_rng)
        return api.service_events(state, parts[4], query)

    def _send(self, kind: str, response: Response, truncate: bool = False) -> None:
        status = response.status
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            # the gateway's clock, on every answer (as the real one sends it)
            f"Date: {formatdate(self.server.state.config.now(), usegmt=True)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        body = response.body
        if truncate:
            lines.append("Connection: close")
            body = body[: len(body) // 2]
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.server.state.stats.count_request(kind, status)
        self.wfile.write(head + body)


class SimulatorServer(ThreadingHTTPServer):
    """The simulator on a socket; `serve_forever` in any thread, `shutdown` from another."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        self.state = state
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that go away mid-response are normal under fault injection.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def make_server(
    history: History, config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> SimulatorServer:
    """A server bound to host:port (0: a free port) holding the history; not yet serving."""
    return SimulatorServer((host, port), build_state(history, config))
