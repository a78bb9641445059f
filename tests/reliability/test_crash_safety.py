"""SIGKILL the pipeline at random points, rerun it: the warehouse is exact every time."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.simulator.process import SimulatorInfo
from tests.reliability.conftest import ROUNDS, expected_keys
from tests.reliability.scenarios import (
    Tally,
    kill_and_recover,
    kill_group_repeatedly_then_run,
    simulator_days,
)

pytestmark = pytest.mark.integration


def test_sigkill_at_random_points_then_rerun_is_exact(
    crash_simulator: SimulatorInfo, fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    expected = expected_keys(crash_simulator)
    days = simulator_days(crash_simulator)
    tally = Tally("sigkill")
    rng = random.Random(20261129)
    for _ in range(ROUNDS):
        kill_and_recover(tally, crash_simulator, fresh_database(), days, expected, tmp_path, rng)
    assert tally.runs_recovered == ROUNDS, tally.notes
    assert tally.faults_injected >= 1
    assert (tally.rows_lost, tally.rows_extra, tally.duplicates) == (0, 0, 0)


def test_a_run_after_three_killed_process_groups_finishes_and_is_exact(
    crash_simulator: SimulatorInfo, fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    """Issue #12: three SIGKILLed runs left their pool slots claimed; the next run spun forever.
    Now it reclaims them, takes over the dead loads' days and finishes (bounded: 300 s)."""
    expected = expected_keys(crash_simulator)
    days = simulator_days(crash_simulator)
    tally = Tally("sigkill of the process group, three times, then a run")
    rng = random.Random(20261202)
    kill_group_repeatedly_then_run(
        tally, crash_simulator, fresh_database(), days, expected, tmp_path, rng
    )
    assert tally.runs_recovered == 1, tally.notes
    assert tally.faults_injected >= 2  # at least two kills landed while runs were working
    assert (tally.rows_lost, tally.rows_extra, tally.duplicates) == (0, 0, 0)
