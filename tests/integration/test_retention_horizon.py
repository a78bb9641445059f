"""The API's retention horizon as the operator sees it: with a 3-day retention, `status` marks
unrecoverable exactly the days wholly beyond it that were never loaded (not a loaded day, not a
loaded day with 0 events, not a day not loaded yet); `backfill` of such days loads nothing for
them and says so in one line; the report and the service_events asset check name them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetCheckEvaluation, AssetCheckKey, AssetKey, DagsterInstance
from sqlalchemy import Engine, text

from pipelines.cli import main
from pipelines.horizon import describe_days
from pipelines.simulator.process import SimulatorInfo
from tests.integration.conftest import simulator_env, simulator_fixture
from tests.queries import scalar

pytestmark = pytest.mark.integration

# A history of the 8 days before today (the default end: today, UTC).
recent = simulator_fixture(["--services", "3", "--days", "8", "--seed", "3"])


def _state_rows(out: str) -> dict[date, tuple[str, int]]:
    """`status` rows: day -> (state, events)."""
    found = {}
    for line in out.splitlines():
        try:
            day = date.fromisoformat(line[:10])
        except ValueError:
            continue
        found[day] = (line[12:27].strip(), int(line.split()[-3]))
    return found


def test_status_backfill_report_and_check_know_the_horizon(
    recent: SimulatorInfo,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in simulator_env(recent, database_url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MODELARTS_TOKEN", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    today = datetime.now(UTC).date()

    def ago(n: int) -> date:
        return today - timedelta(days=n)

    # loaded while the API still held them (the tests' default horizon is a century): a day
    # before the simulator's history (0 events) and its first two days
    assert main(["backfill", "--start", str(ago(9)), "--end", str(ago(7))]) == 0

    monkeypatch.setenv("MODELARTS_RETENTION_DAYS", "3")
    first_kept = (datetime.now(UTC) - timedelta(days=3)).date()
    beyond = [d for d in (ago(n) for n in range(10, 0, -1)) if d < first_kept]
    batches = scalar(engine, "select count(*) from load_batches")
    capsys.readouterr()
    assert main(["backfill", "--start", str(ago(5)), "--end", str(ago(4))]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "beyond" in line]
    assert lines == [
        f"backfill: {ago(5)}..{ago(4)} (2 day(s)) wholly beyond the API's 3-day retention "
        f"(MODELARTS_RETENTION_DAYS; the first day it still holds is {first_kept}): nothing "
        "loaded for them; `modelarts-etl status` shows those never loaded as unrecoverable"
    ]
    assert "succeeded" not in out
    assert scalar(engine, "select count(*) from load_batches") == batches  # no load at all

    # a range across the horizon: the days it still holds load, the others are named
    assert main(["backfill", "--start", str(ago(6)), "--end", str(ago(2))]) == 0
    out = capsys.readouterr().out
    assert sum("wholly beyond" in line for line in out.splitlines()) == 1
    assert f"backfill {first_kept}..{ago(2)}: run" in out

    assert main(["status", "--start", str(ago(10)), "--end", str(ago(1))]) == 0
    status = capsys.readouterr().out
    print(status)
    rows = _state_rows(status)
    assert sorted(rows) == [ago(n) for n in range(10, 0, -1)]
    never_loaded = {ago(10), ago(6), ago(5), ago(4), ago(1)}
    unrecoverable = {d for d, (state, _) in rows.items() if state == "unrecoverable"}
    assert unrecoverable == set(beyond) & never_loaded
    assert rows[ago(9)] == ("loaded", 0)  # loaded and empty: not unrecoverable
    assert rows[ago(8)][0] == "loaded" and rows[ago(8)][1] > 0
    assert rows[ago(1)][0] == "not loaded"  # inside the horizon: can still load
    assert "unrecoverable: never loaded" in status

    # the service_events check of the last run names them
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [AssetCheckKey(AssetKey("service_events"), "no_unrecoverable_days")]
        )[AssetCheckKey(AssetKey("service_events"), "no_unrecoverable_days")]
        assert record.event is not None and record.event.dagster_event is not None
        evaluation = record.event.dagster_event.event_specific_data
    assert isinstance(evaluation, AssetCheckEvaluation)
    assert evaluation.passed is False
    named = str(evaluation.metadata["unrecoverable_days"].value)
    assert all(_within(d, named) for d in unrecoverable)
    assert not any(_within(d, named) for d in set(rows) - unrecoverable)

    report = tmp_path / "report.html"
    assert (
        main(["report", "--start", str(ago(10)), "--end", str(ago(1)), "--out", str(report)]) == 0
    )
    html = report.read_text()
    assert f'data-unrecoverable="{len(unrecoverable)}"' in html
    assert describe_days(sorted(unrecoverable)) in html


def _within(day: date, spans: str) -> bool:
    """`day` lies in one of the `first..last` spans of describe_days."""
    for span in spans.split(", "):
        first, _, last = span.partition("..")
        if date.fromisoformat(first) <= day <= date.fromisoformat(last or first):
            return True
    return False


# (generation, status) of the whole-day loads of one day -> its state
@pytest.mark.parametrize(
    ("loads", "state"),
    [
        ([("v1", "succeeded")], "loaded"),
        ([("v2", "succeeded")], "loaded"),  # MODELARTS_API=v2: a project without v1 loads
        ([("v1", "succeeded"), ("v2", "failed")], "not loaded"),  # its records still missing
        ([("v1", "succeeded"), ("v2", "failed"), ("v2", "succeeded")], "loaded"),
        ([("v1", "failed"), ("v1", "succeeded"), ("v2", "succeeded")], "loaded"),
        ([("v1", "succeeded"), ("v2", "running")], "loaded"),  # a running load decides nothing
        ([("v1", "failed")], "not loaded"),
        ([], "not loaded"),
    ],
)
def test_a_day_is_loaded_when_no_generation_that_tried_it_only_failed(
    engine: Engine, loads: list[tuple[str, str]], state: str
) -> None:
    day = date(2026, 11, 20)
    start_ms = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
    with engine.begin() as conn:
        for generation, status in loads:
            conn.execute(
                text(
                    "insert into load_batches (partition_key, window_start_ms, window_end_ms, "
                    "generation, status, finished_at) values (:day, :start, :end, :generation, "
                    ":status, now())"
                ),
                {
                    "day": day.isoformat(),
                    "start": start_ms,
                    "end": start_ms + 86_400_000,
                    "generation": generation,
                    "status": status,
                },
            )
    got = scalar(
        engine,
        "select state from day_load_states(:day, :day, :first_recoverable)",
        day=day,
        first_recoverable=day - timedelta(days=10),
    )
    assert got == state
