"""SIGKILL the pipeline at random points, rerun it: the warehouse is exact every time."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.simulator.process import SimulatorInfo
from tests.reliability.conftest import ROUNDS, expected_keys
from tests.reliability.scenarios import Tally, kill_and_recover

pytestmark = pytest.mark.integration


def test_sigkill_at_random_points_then_rerun_is_exact(
    crash_simulator: SimulatorInfo, fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    expected = expected_keys(crash_simulator)
    last = date.fromisoformat(crash_simulator.end_date) - timedelta(days=1)
    days = (crash_simulator.start_date, last.isoformat())
    tally = Tally("sigkill")
    rng = random.Random(20261129)
    for _ in range(ROUNDS):
        kill_and_recover(tally, crash_simulator, fresh_database(), days, expected, tmp_path, rng)
    assert tally.runs_recovered == ROUNDS, tally.notes
    assert tally.faults_injected >= 1
    assert (tally.rows_lost, tally.rows_extra, tally.duplicates) == (0, 0, 0)
