"""Kill the pipeline's database connections mid-load: readers never see half a day, the rerun is
exact."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.simulator.process import SimulatorInfo
from tests.reliability.conftest import ROUNDS, expected_keys
from tests.reliability.scenarios import Tally, kill_connections_and_recover

pytestmark = pytest.mark.integration


def day_windows(info: SimulatorInfo) -> list[tuple[int, int]]:
    first = date.fromisoformat(info.start_date)
    count = (date.fromisoformat(info.end_date) - first).days
    starts = [
        datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=i)
        for i in range(count)
    ]
    return [(int(s.timestamp() * 1000), int(s.timestamp() * 1000) + 86_400_000) for s in starts]


def test_killed_connections_leave_no_half_day_and_the_rerun_is_exact(
    crash_simulator: SimulatorInfo, fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    expected = expected_keys(crash_simulator)
    last = date.fromisoformat(crash_simulator.end_date) - timedelta(days=1)
    days = (crash_simulator.start_date, last.isoformat())
    tally = Tally("connection killed mid-load")
    rng = random.Random(7)
    for _ in range(ROUNDS):
        kill_connections_and_recover(
            tally, crash_simulator, fresh_database(), days, day_windows(crash_simulator),
            expected, tmp_path, rng,
        )  # fmt: skip
    assert tally.runs_recovered == ROUNDS, tally.notes
    assert tally.faults_injected >= 1, tally.notes
    assert (tally.rows_lost, tally.rows_extra, tally.duplicates) == (0, 0, 0), tally.notes
