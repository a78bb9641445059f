"""`modelarts-etl dev` as a user meets it: the UI serves the code location of workspace.yaml,
the simulator's days as partitions, no community modal and no supersession warning; Ctrl+C stops
it (during its start too) without a traceback, leaving no process and nothing in the working
directory."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


class _Dev:
    """`modelarts-etl dev` in its own session, as a terminal's foreground job (SIGINT default)."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MODELARTS_", "HUAWEICLOUD_", "DAGSTER_", "PIPELINES_"))
        }
        env.update(DATABASE_URL=database_url, PIPELINES_DATA_DIR=str(tmp_path / "data"))
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "dev", "--port", str(self.port),
             "--sim-services", "4", "--sim-days", "3"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        self.seen: set[psutil.Process] = set()
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout_s: float = 300.0) -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
        while datetime.now(UTC) < deadline:
            self._descendants()
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} in: {''.join(self.output)}")

    def _descendants(self) -> list[psutil.Process]:
        """The CLI's processes: `dagster dev` runs in a session of its own, with its children."""
        with contextlib.suppress(psutil.NoSuchProcess):
            self.seen.update(psutil.Process(self.process.pid).children(recursive=True))
        return list(self.seen)

    def ctrl_c(self) -> int:
        self._descendants()
        os.killpg(self.process.pid, signal.SIGINT)  # what a terminal does
        code = self.process.wait(timeout=120)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code

    def left(self) -> list[int]:
        """Processes the CLI started that still run after it exited (zombies get 10 s to be
        reaped)."""
        running = self._descendants()
        for _ in range(10):
            running = [p for p in running if p.is_running() and not _zombie(p)]
            if not running:
                break
            time.sleep(1)
        return [p.pid for p in running]

    def stop(self) -> None:
        if self.process.poll() is None:
            self._descendants()
            self.process.kill()
        for child in self.seen:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        self.process.wait(timeout=30)


def _zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _graphql(port: int, query: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback
    deadline = datetime.now(UTC) + timedelta(seconds=120)
    while True:  # the webserver logs "Serving" just before it binds
        try:
            with opener.open(request, timeout=60) as answer:
                data: dict[str, object] = json.load(answer)["data"]
            return data
        except urllib.error.URLError:
            if datetime.now(UTC) > deadline:
                raise
            time.sleep(1)


def test_the_ui_serves_the_demo_and_stops_on_ctrl_c(tmp_path: Path, database_url: str) -> None:
    dev = _Dev(tmp_path, database_url)
    try:
        dev.wait_for("Serving dagster-webserver")
        data = _graphql(
            dev.port,
            "{ shouldShowNux workspaceOrError { ... on Workspace { locationEntries { name } } }"
            ' assetNodes(assetKeys: [{path: ["service_events"]}]) { partitionKeys } }',
        )
        assert data["shouldShowNux"] is False
        assert data["workspaceOrError"] == {"locationEntries": [{"name": "modelarts_events"}]}
        today = datetime.now(UTC).date()
        simulator_days = [(today - timedelta(days=n)).isoformat() for n in (3, 2, 1)]
        assert data["assetNodes"] == [{"partitionKeys": simulator_days}]
        assert dev.ctrl_c() == 0
        output = "".join(dev.output)
        assert "Traceback" not in output and "SupersessionWarning" not in output, output
        assert dev.left() == []
        # the instance is in the data directory; nothing lands in the working directory
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
        assert not (tmp_path / "data" / "dagster_home" / ".nux").exists()
    finally:
        dev.stop()


def test_ctrl_c_while_the_ui_starts_is_quiet(tmp_path: Path, database_url: str) -> None:
    dev = _Dev(tmp_path, database_url)
    try:
        dev.wait_for("Dagster UI on http://127.0.0.1:")  # its processes are starting now
        assert dev.ctrl_c() == 0
        output = "".join(dev.output)
        assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
        assert "Aborted!" not in output
        assert dev.left() == []
    finally:
        dev.stop()
