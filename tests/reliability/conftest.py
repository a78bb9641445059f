"""Fixtures of the fault suite: a larger simulator history, so kills land inside loads."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
import requests
from psycopg import sql

from pipelines.simulator.process import SimulatorInfo, running_simulator
from pipelines.warehouse.embedded import ensure_database
from tests.reliability.scenarios import EventKey

# CI runs a few rounds per scenario; `python -m tests.reliability` runs the full count.
ROUNDS = int(os.environ.get("FAULT_SUITE_ROUNDS", "3"))
CRASH_SIM_ARGS = [
    "--services", "40", "--days", "2", "--seed", "23", "--end-date", "2026-11-20",
    "--events-per-service-day", "300",
]  # fmt: skip


@pytest.fixture(scope="session")
def crash_simulator() -> Iterator[SimulatorInfo]:
    with running_simulator(CRASH_SIM_ARGS) as info:
        yield info


def expected_keys(
    info: SimulatorInfo, start_ms: int | None = None, end_ms: int | None = None
) -> set[EventKey]:
    """The simulator's events, or those with start_ms <= occur_time < end_ms."""
    window = (
        {}
        if start_ms is None or end_ms is None
        else {"start_time": start_ms, "end_time": end_ms - 1}
    )
    body = requests.get(f"{info.url}/_sim/expected", params=window, timeout=60).json()
    return {(e["service_id"], e["occur_time"], e["event_info"]) for e in body["events"]}


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
