"""Loading the code prints no warning: every `dagster` command imports it, and a warning printed
on each one (superseded freshness checks, beta parameters) teaches operators to ignore them."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings

from pipelines.definitions import build_definitions
from tests import REPO


def test_importing_the_definitions_prints_nothing() -> None:
    # a fresh interpreter: the asset decorators run (and would warn) only on the first import
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import pipelines.definitions"],
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "default"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == ""


def test_building_the_definitions_emits_no_warning() -> None:
    # garbage of earlier tests in this process (a Dagster instance's temporary folder waiting in a
    # reference cycle) is collected first: its ResourceWarning would be caught below at random
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions()
        defs.resolve_asset_graph()
        defs.resolve_job_def("nightly")
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
