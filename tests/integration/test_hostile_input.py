"""Hostile input over HTTP: every record gives a correct row, a quarantine row or a clear error,
and the run never crashes on what it can handle."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine, text

from pipelines.assets.events import service_events, services
from pipelines.definitions import build_resources
from pipelines.simulator.hostile import BAD_ANSWERS, HOSTILE_SERVICE_ID, MEGABYTE
from pipelines.simulator.process import SimulatorInfo, running_simulator
from pipelines.source.errors import PagingError, SourceError
from pipelines.source.paging import iter_event_pages
from pipelines.warehouse.database import sqlalchemy_url
from pipelines.windows import TimeWindow
from tests.integration.conftest import simulator_env

pytestmark = pytest.mark.integration

# The hostile records sit 3 h into the first day of the history.
ARGS = ["--services", "3", "--days", "2", "--seed", "5", "--end-date", "2026-11-20", "--hostile"]
FIRST_DAY = "2026-11-18"


@pytest.fixture(scope="module")
def hostile_simulator() -> Iterator[SimulatorInfo]:
    with running_simulator(ARGS) as info:
        yield info


@pytest.fixture(scope="module")
def bad_answers_simulator() -> Iterator[SimulatorInfo]:
    with running_simulator([*ARGS[:-1], "--hostile-answers"]) as info:
        yield info


def _use(info: SimulatorInfo, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in simulator_env(info, database_url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MODELARTS_MAX_RETRIES", "2")


def _materialize_first_day() -> bool:
    resources = build_resources()
    instance = DagsterInstance.ephemeral()
    assets = [services, service_events]
    listing = materialize(assets, selection=["services"], instance=instance, resources=resources)
    assert listing.success
    return materialize(
        assets, selection=["service_events"], partition_key=FIRST_DAY, instance=instance,
        resources=resources, raise_on_error=False,
    ).success  # fmt: skip


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_hostile_records_are_stored_repaired_or_exact(
    hostile_simulator: SimulatorInfo, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(hostile_simulator, database_url, monkeypatch)
    assert _materialize_first_day()
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        rows = conn.execute(
            text("select occur_time, event_info from service_events where service_id = :s"
                 " order by occur_time"),
            {"s": HOSTILE_SERVICE_ID},
        ).all()  # fmt: skip
        listed = conn.execute(
            text("select count(*) from services where service_id = :s"), {"s": HOSTILE_SERVICE_ID}
        ).scalar_one()
        quarantined = conn.execute(text("select count(*) from quarantined_events")).scalar_one()
    engine.dispose()
    texts = [r[1] for r in rows]
    assert len(rows) == 7  # every record of the hostile service, none dropped, none doubled
    assert "preparing\ufffdenvironment" in texts  # NUL replaced, event kept
    assert "half a pair: \ufffd end" in texts  # lone surrogate replaced, event kept
    assert "x" * MEGABYTE + "ü" in texts  # 1 MB text stored exactly
    assert any(t.endswith("pulling model image") for t in texts)  # extra fields ignored
    assert rows[5][0] - rows[0][0] == 5_000  # occur_time written as 1.7e12.0 stored as an integer
    assert listed == 1  # listed twice by the API, one row
    assert quarantined == 0


@pytest.mark.parametrize(
    ("service_id", "error", "words"),
    [
        ("hostile-count-over-limit", PagingError, "holds 11 events"),
        ("hostile-array-body", SourceError, "not an object"),
        ("hostile-html-200", SourceError, "not json (text/html"),
    ],
)
def test_wrong_answers_end_in_a_clear_error_naming_the_service(
    bad_answers_simulator: SimulatorInfo,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    service_id: str,
    error: type[Exception],
    words: str,
) -> None:
    assert service_id in BAD_ANSWERS
    _use(bad_answers_simulator, database_url, monkeypatch)
    client = build_resources()["modelarts"].process_config_and_initialize().build_client()
    window = TimeWindow(1763424000000, 1763510400000)
    with pytest.raises(error) as raised:
        list(iter_event_pages(client, service_id, window, limit=10))
    message = str(raised.value)
    assert service_id in message and words in message.lower()


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_a_run_meeting_wrong_answers_fails_and_loads_nothing(
    bad_answers_simulator: SimulatorInfo, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(bad_answers_simulator, database_url, monkeypatch)
    assert not _materialize_first_day()
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        stored = conn.execute(text("select count(*) from service_events")).scalar_one()
        statuses = set(conn.execute(text("select status from load_batches")).scalars())
    engine.dispose()
    assert stored == 0
    assert statuses == {"failed"}
