"""Start the simulator for a test or a demo: as a subprocess, or in a thread of this process."""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from pipelines.simulator.admin import info
from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.models import History
from pipelines.simulator.server import make_server
from pipelines.simulator.state import SimulatorState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulatorInfo:
    """Where a running simulator listens and how to log in; end_date is exclusive."""

    url: str
    project_id: str
    username: str
    password: str
    domain: str
    region: str
    access_key: str
    secret_key: str
    start_date: str
    end_date: str
    services: int
    events: int


def ready_line(url: str, state: SimulatorState) -> dict[str, Any]:
    """The JSON object the command prints once it listens."""
    data = info(state)
    return {
        "url": url,
        **{k: data[k] for k in ("project_id", "username", "password", "domain", "region")},
        **{k: data[k] for k in ("access_key", "secret_key")},
        **{k: data[k] for k in ("start_date", "end_date", "services", "events")},
    }


def _info(data: dict[str, Any]) -> SimulatorInfo:
    return SimulatorInfo(**{k: data[k] for k in SimulatorInfo.__dataclass_fields__})


@contextlib.contextmanager
def running_simulator(
    args: list[str] | None = None, timeout_s: float = 60
) -> Iterator[SimulatorInfo]:
    """`python -m pipelines.simulator *args` as a subprocess, stopped on exit."""
    command = [sys.executable, "-m", "pipelines.simulator", *(args or [])]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        try:
            yield _info(_read_ready(proc, stderr, timeout_s))
        finally:
            _stop(proc)


def _read_ready(proc: subprocess.Popen[bytes], stderr: Any, timeout_s: float) -> dict[str, Any]:
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout_s)
    except queue.Empty:
        line = b""
    if line.strip():
        return dict(orjson.loads(line))
    _stop(proc)
    stderr.seek(0)
    detail = stderr.read().decode(errors="replace")
    raise RuntimeError(
        f"simulator did not become ready within {timeout_s} s "
        f"(exit code {proc.returncode}):\n{detail}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("simulator pid %d ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def simulator_in_thread(history: History, config: SimulatorConfig) -> Iterator[SimulatorInfo]:
    """The simulator serving `history` on a free loopback port, in a daemon thread."""
    server = make_server(history, config)
    worker = threading.Thread(target=server.serve_forever, name="simulator", daemon=True)
    worker.start()
    try:
        yield _info(ready_line(server.url, server.state))
    finally:
        server.shutdown()
        server.server_close()
        worker.join(timeout=10)
