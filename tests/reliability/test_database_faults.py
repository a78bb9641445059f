"""Kill the pipeline's database connections mid-load: readers never see half a day, the rerun is
exact."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.simulator.process import SimulatorInfo
from tests.reliability.conftest import ROUNDS, expected_keys
from tests.reliability.scenarios import (
    Tally,
    kill_connections_and_recover,
    simulator_day_windows,
    simulator_days,
)

pytestmark = pytest.mark.integration


def test_killed_connections_leave_no_half_day_and_the_rerun_is_exact(
    crash_simulator: SimulatorInfo, fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    expected = expected_keys(crash_simulator)
    days = simulator_days(crash_simulator)
    tally = Tally("connection killed mid-load")
    rng = random.Random(7)
    for _ in range(ROUNDS):
        kill_connections_and_recover(
            tally, crash_simulator, fresh_database(), days, simulator_day_windows(crash_simulator),
            expected, tmp_path, rng,
        )  # fmt: skip
    assert tally.runs_recovered == ROUNDS, tally.notes
    assert tally.faults_injected >= 1, tally.notes
    assert (tally.rows_lost, tally.rows_extra, tally.duplicates) == (0, 0, 0), tally.notes
