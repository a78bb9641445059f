"""The simulator as a command: ready line, serving, clean exit on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import orjson
import pytest
import requests

from pipelines.simulator.process import running_simulator

pytestmark = pytest.mark.integration

ARGS = ["--services", "5", "--days", "2", "--end-date", "2026-11-29", "--static-token", "tok"]


def test_running_simulator_serves() -> None:
    with running_simulator(ARGS) as info:
        assert info.url.startswith("http://127.0.0.1:")
        assert (info.start_date, info.end_date, info.services) == ("2026-11-27", "2026-11-29", 5)
        assert info.project_id == "0b1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e"
        listing = requests.get(
            f"{info.url}/v1/{info.project_id}/services", headers={"X-Auth-Token": "tok"}, timeout=5
        ).json()
        assert listing["total_count"] == 5
        assert requests.get(f"{info.url}/_sim/info", timeout=5).json()["events"] == info.events


def test_failure_to_start_reports_stderr() -> None:
    with (
        pytest.raises(RuntimeError, match="offset-mode"),
        running_simulator(["--offset-mode", "bogus"], timeout_s=20),
    ):
        pass


def test_sigterm_exits_cleanly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.simulator", *ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = orjson.loads(proc.stdout.readline())
        assert set(ready) == {
            "url", "project_id", "username", "password", "domain", "region",
            "access_key", "secret_key", "start_date", "end_date", "services", "events",
            "v2_services",
        }  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
