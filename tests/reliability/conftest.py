"""Fixtures of the fault suite: a larger simulator history, so kills land inside loads."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.embedded import ensure_database
from tests.integration.conftest import simulator_fixture
from tests.reliability.scenarios import CrashTarget

# CI runs a few rounds per scenario; `python -m tests.reliability` runs the full count.
ROUNDS = int(os.environ.get("FAULT_SUITE_ROUNDS", "3"))
CRASH_SIM_ARGS = [
    "--services", "40", "--days", "2", "--seed", "23", "--end-date", "2026-11-20",
    "--events-per-service-day", "300",
]  # fmt: skip


crash_simulator = simulator_fixture(CRASH_SIM_ARGS, scope="session")


@pytest.fixture
def crash_target(crash_simulator: SimulatorInfo, tmp_path: Path) -> CrashTarget:
    return CrashTarget.of(crash_simulator, tmp_path)


@pytest.fixture
def fresh_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of new, empty databases (one per round), all dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"fault_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return ensure_database(pg_admin_url, name)

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
