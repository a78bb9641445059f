"""Commands that start no run do not import Dagster (issue 19: cheap things stay cheap).

Each command runs in a fresh interpreter, which then reports whether any `dagster` module was
loaded; `run` is the control that shows the probe can see Dagster when it is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipelines.simulator.process import SimulatorInfo, pipeline_environment
from tests import REPO
from tests.integration.conftest import simulator_days

pytestmark = pytest.mark.integration

PROBE = """
import json, sys
from pipelines.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # argparse's --help
    code = exc.code
loaded = sorted(m for m in sys.modules if m == "dagster" or m.startswith("dagster."))
print(json.dumps({"code": code, "dagster_modules": len(loaded)}))
"""


def _probe(args: list[str], env: dict[str, str]) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.stdout.strip(), done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def cli_env(database_url: str, engine: Engine, tmp_path: Path) -> dict[str, str]:
    # `engine` migrates the database: status, db and report only read (no migration of theirs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELARTS_", "HUAWEICLOUD_"))}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return env | {"DATABASE_URL": database_url, "DAGSTER_HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["run", "--help"], 0),
        (["status", "--start", "2026-11-01", "--end", "2026-11-03"], 0),
        (["db", "--print-only"], 0),
        (["reclassify", "--start", "2026-11-01", "--end", "2026-11-02"], 0),
        (["report", "--help"], 0),
        (["rerun", "2099-01-01"], 2),  # an operator mistake, reported before anything starts
        (["backfill", "--start", "2026-11-03", "--end", "2026-11-01"], 2),
    ],
)
def test_commands_without_a_run_do_not_import_dagster(
    args: list[str], code: int, cli_env: dict[str, str]
) -> None:
    result = _probe(args, cli_env)
    assert result == {"code": code, "dagster_modules": 0}


def test_report_does_not_import_dagster(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    args = ["report", "--start", "2026-11-01", "--end", "2026-11-03", "--out", str(out)]
    assert _probe(args, cli_env) == {"code": 0, "dagster_modules": 0}
    assert out.stat().st_size > 0


def test_the_probe_sees_dagster_when_a_run_imports_it(
    simulator: SimulatorInfo, cli_env: dict[str, str]
) -> None:
    day = simulator_days(simulator)[0]
    result = _probe(["rerun", day], cli_env | pipeline_environment(simulator))
    assert result["code"] == 0 and result["dagster_modules"] > 0
