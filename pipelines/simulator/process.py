"""Start the simulator for a test or a demo: as a subprocess, or in a thread of this process;
the local stand-ins of a CLI command (the simulator, the embedded Postgres)."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipelines import settings
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
    v2_services: int = 0  # new-version services (--api v2|mixed), besides `services` (v1)


def ready_line(url: str, state: SimulatorState) -> dict[str, Any]:
    """The JSON object the command prints once it listens."""
    data = info(state)
    return {
        "url": url,
        **{k: data[k] for k in ("project_id", "username", "password", "domain", "region")},
        **{k: data[k] for k in ("access_key", "secret_key")},
        **{k: data[k] for k in ("start_date", "end_date", "services", "events", "v2_services")},
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


# Every credential variable: a simulator's environment blanks those it does not set.
BLANKED = (
    settings.MODELARTS_TOKEN,
    settings.SDK_AK,
    settings.SDK_SK,
    settings.SDK_SECURITY_TOKEN,
    settings.SDK_PROJECT_ID,
    settings.SDK_CREDENTIALS_FILE,
    settings.METADATA_ENDPOINT,
    settings.IAM_ENDPOINT,
    settings.IAM_USERNAME,
    settings.IAM_PASSWORD,
    settings.IAM_DOMAIN,
    settings.IAM_REGION,
)


def pipeline_environment(info: SimulatorInfo, auth: str = "aksk") -> dict[str, str]:
    """The variables that point the pipeline at a running simulator, with its AK/SK (`aksk`),
    temporary keys from its metadata endpoints (`metadata`) or IAM password auth (`password`).

    The variables of the other sources are set empty (to the pipeline: unset), so that a
    shell's own credentials cannot take precedence over the simulator's."""
    env = {
        settings.MODELARTS_ENDPOINT: info.url,
        settings.MODELARTS_PROJECT_ID: info.project_id,
        **{var: "" for var in BLANKED},
    }
    if auth == "aksk":
        env.update({settings.SDK_AK: info.access_key, settings.SDK_SK: info.secret_key})
    elif auth == "metadata":
        env[settings.METADATA_ENDPOINT] = info.url
    elif auth == "password":
        env.update(
            {
                settings.IAM_ENDPOINT: info.url,
                settings.IAM_USERNAME: info.username,
                settings.IAM_PASSWORD: info.password,
                settings.IAM_DOMAIN: info.domain,
                settings.IAM_REGION: info.region,
            }
        )
    else:
        raise ValueError(f"auth must be aksk, metadata or password, not {auth!r}")
    return env


@dataclass(frozen=True)
class StandIns:
    """What `local_stand_ins` started: the simulator's range of days, the embedded data folder."""

    simulator: SimulatorInfo | None
    embedded_data_dir: Path | None

    @property
    def days(self) -> tuple[date, date] | None:
        """The simulator's first and last day, when it was started."""
        if self.simulator is None:
            return None
        last = date.fromisoformat(self.simulator.end_date) - timedelta(days=1)
        return date.fromisoformat(self.simulator.start_date), last


@contextlib.contextmanager
def local_stand_ins(simulator_args: list[str] | None, data_dir: Path | None) -> Iterator[StandIns]:
    """The local stand-ins of a command, running until the block ends: the simulator (when
    `simulator_args` is given) in place of the API, the embedded Postgres (when `data_dir` is)
    in place of DATABASE_URL. The process environment points the pipeline at them."""
    with contextlib.ExitStack() as stack:
        simulator = None
        if simulator_args is not None:
            simulator = stack.enter_context(running_simulator(simulator_args))
            os.environ.update(pipeline_environment(simulator))
        if data_dir is not None:
            from pipelines.warehouse.embedded import start_embedded_postgres

            os.environ[settings.DATABASE_URL] = start_embedded_postgres(data_dir)
            os.environ[settings.EMBEDDED] = "1"
        yield StandIns(simulator, data_dir)
