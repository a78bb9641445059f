"""Kill the pipeline mid-run, rerun it: the warehouse is exact every time. Killed at random points
(SIGKILL of the process, or of its database connections while a reader watches that no day is
ever half there), and three killed process groups before a run that must finish."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.reliability.conftest import ROUNDS
from tests.reliability.scenarios import (
    CrashTarget,
    Tally,
    kill_and_recover,
    kill_connections_and_recover,
    kill_group_repeatedly_then_run,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("scenario", "seed"),
    [
        pytest.param(kill_and_recover, 20261129, id="sigkill"),
        pytest.param(kill_connections_and_recover, 7, id="connections-killed-mid-load"),
    ],
)
def test_killed_at_random_points_then_rerun_is_exact(
    scenario: Callable[[Tally, CrashTarget, str, random.Random], None],
    seed: int,
    crash_target: CrashTarget,
    fresh_database: Callable[[], str],
) -> None:
    tally = Tally(scenario.__name__)
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        scenario(tally, crash_target, fresh_database(), rng)
    tally.assert_recovered_exactly(ROUNDS)


def test_a_run_after_three_killed_process_groups_finishes_and_is_exact(
    crash_target: CrashTarget, fresh_database: Callable[[], str]
) -> None:
    """Issue #12: three SIGKILLed runs left their pool slots claimed; the next run spun forever.
    Now it reclaims them, takes over the dead loads' days and finishes (bounded: 300 s)."""
    tally = Tally("sigkill of the process group, three times, then a run")
    kill_group_repeatedly_then_run(tally, crash_target, fresh_database(), random.Random(20261202))
    # one recovery run, and at least two kills landed while runs were working
    tally.assert_recovered_exactly(1, faults=2)
