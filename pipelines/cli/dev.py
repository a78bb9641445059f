"""`modelarts-etl dev`: the Dagster UI (`dagster dev`) as a child process group, its output
relayed without noise, stopped cleanly on Ctrl+C."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from pipelines.cli.environment import environment
from pipelines.cli.errors import CliError

# What `modelarts-etl dev` loads when no workspace.yaml is in the working directory: the same
# code location as the checkout's workspace.yaml (tests/unit/test_cli_help.py compares them).
WORKSPACE_YAML = """load_from:
  - python_module:
      module_name: pipelines.definitions
      attribute: defs
      location_name: modelarts_events
"""
# `dagster dev` warns on every start that it is superseded by `dg dev` (dagster-dg-cli, which
# needs a dg project); the UI it starts is the same, so the warning is noise here.
_NO_SUPERSESSION_WARNING = "ignore:Function `dev_command` is superseded"


def _check_port_free(port: int) -> None:
    """The UI's port on 127.0.0.1 is free, else one line (before anything starts)."""
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CliError(
            f"port {port} on 127.0.0.1 is not free ({reason}): stop what listens there, or use "
            "--port N"
        ) from None


def dev(args: argparse.Namespace) -> int:
    _check_port_free(args.port)
    with environment(args):
        workspace = Path("workspace.yaml")
        if not workspace.is_file():
            workspace = Path(os.environ["DAGSTER_HOME"]) / "workspace.yaml"
            workspace.write_text(WORKSPACE_YAML, encoding="utf-8")
        command = [
            sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
            "-h", "127.0.0.1", "-p", str(args.port),
        ]  # fmt: skip
        warning_filters = [os.environ.get("PYTHONWARNINGS", ""), _NO_SUPERSESSION_WARNING]
        env = {**os.environ, "PYTHONWARNINGS": ",".join(filter(None, warning_filters))}
        env.setdefault("GRPC_VERBOSITY", "ERROR")  # no gRPC C-core INFO lines on shutdown
        # Its own process group: on shutdown the webserver, daemon and code servers all get the
        # signal, not just `dagster dev` (which would leave them running).
        child = subprocess.Popen(
            command,
            start_new_session=True,
            preexec_fn=_default_sigint,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        serving, muted = threading.Event(), threading.Event()
        relay = threading.Thread(
            target=_relay_dev_output, args=(child, serving, muted), daemon=True
        )
        relay.start()
        try:
            print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl+C to stop)", flush=True)
            return child.wait()
        except KeyboardInterrupt:
            # Before the webserver serves, its processes are still importing: SIGINT would end
            # each with a KeyboardInterrupt traceback, and there is nothing to shut down cleanly:
            # they are terminated, and what they print while dying is not shown.
            if not serving.is_set():
                muted.set()
            _stop_group(child, graceful=serving.is_set())
            return 0
        finally:
            relay.join(timeout=5)


# Lines of `dagster dev` that say nothing to a user of this CLI: DAGSTER_HOME is set on purpose
# (an instance folder in the data directory) while the checkout's dagster.yaml is its source.
_DEV_NOISE = ("Found a dagster instance configuration value (dagster.yaml) in the current folder",)


def _relay_dev_output(
    child: subprocess.Popen[str], serving: threading.Event, muted: threading.Event
) -> None:
    """Copy `dagster dev`'s output to stderr, without the noise, until `muted`; note when the UI
    serves."""
    assert child.stdout is not None
    for line in child.stdout:
        if "Serving dagster-webserver" in line:
            serving.set()
        if not muted.is_set() and not any(noise in line for noise in _DEV_NOISE):
            sys.stderr.write(line)
            sys.stderr.flush()


def _default_sigint() -> None:
    # A shell that starts us in the background ignores SIGINT; dagster dev needs it to stop.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_group(child: subprocess.Popen[str], graceful: bool = True) -> None:
    """Stop the child's process group: SIGINT (Dagster's clean shutdown) when `graceful`, then
    SIGTERM, then SIGKILL, each after a wait."""
    # Another Ctrl+C while stopping would abandon the group: it escalates below instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    steps = [(signal.SIGINT, 20.0)] if graceful else []
    for sig, wait_s in [*steps, (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)]:
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; make sure none of its group outlives it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        return
