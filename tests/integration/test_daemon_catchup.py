"""The Dagster daemon catches up by itself: a real `dagster-daemon run` on a fresh instance (the
project's dagster.yaml, nothing switched on) brings every missing day inside the retention horizon
in, exactly, and after a 40-night pause launches one range run, not forty."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from sqlalchemy import Engine

from pipelines import catchup, run_tags
from pipelines.cli import main
from pipelines.horizon import Horizon
from pipelines.operate import day_states
from pipelines.simulator.process import SimulatorInfo, running_simulator
from tests import REPO
from tests.integration.conftest import WebhookRecorder, expected_events, simulator_env
from tests.queries import rows

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def daemon(home: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` on the project's definitions, in an instance folder of its own.

    Its PIPELINES_PARTITIONS_START is the test's; this process keeps the tests' own (the
    partitions are built once per process, when pipelines.assets is first imported)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    log = open(home / "daemon.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
        env={**env, "DAGSTER_HOME": str(home)},
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wait_until_loaded(
    engine: Engine, days: list[date], process: subprocess.Popen[bytes], home: Path
) -> float:
    """Seconds until every day of `days` has a successful load (the daemon must stay up)."""
    started = time.monotonic()
    deadline = started + 900  # a bound on a hung test, not the measure: the seconds are returned
    while time.monotonic() < deadline:
        assert process.poll() is None, (home / "daemon.log").read_text()[-3000:]
        states = day_states(engine, days[0], days[-1], Horizon(datetime.now(UTC), 36500))
        if all(states[d] == "loaded" for d in days):
            return time.monotonic() - started
        time.sleep(2)
    raise AssertionError((home / "daemon.log").read_text()[-3000:])


def day_events(info: SimulatorInfo, day: date) -> int:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000
    return len(expected_events(info, start, start + 86_400_000))


def stored_per_day(engine: Engine) -> dict[date, int]:
    return {
        r.day: r.events
        for r in rows(
            engine,
            "select (occurred_at at time zone 'UTC')::date as day, count(*) as events"
            " from service_events group by 1",
        )
    }


def launched(home: Path) -> list[DagsterRun]:
    with DagsterInstance.from_config(str(home)) as instance:
        return list(reversed(instance.get_runs(RunsFilter(job_name="nightly"))))


def describe(runs: list[DagsterRun]) -> str:
    return "\n".join(
        f"  {r.tags.get(run_tags.TRIGGER) or r.tags.get(run_tags.SCHEDULE_NAME)} "
        f"{r.tags.get(run_tags.PARTITION_RANGE_START)}..{r.tags.get(run_tags.PARTITION_RANGE_END)}"
        f" {r.status.value} key={r.tags.get('dagster/run_key')}"
        for r in runs
    )


def test_the_daemon_alone_brings_the_four_missing_days_of_six_in(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=6 - i) for i in range(6)]
    with running_simulator(["--services", "4", "--days", "6", "--seed", "11"]) as info:
        env = {**os.environ, **simulator_env(info, database_url)}
        env.pop("MODELARTS_TOKEN", None)
        env.update(
            {
                "MODELARTS_RETENTION_DAYS": "30",
                "PIPELINES_NIGHTLY_CRON": "* * * * *",  # the nightly run every minute
                "PIPELINES_NIGHTLY_LOOKBACK_DAYS": "2",
            }
        )
        # the first 2 days loaded by hand, in an instance the daemon never sees
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "operator"))
        (tmp_path / "operator").mkdir()
        (tmp_path / "operator" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        assert main(["backfill", "--start", str(days[0]), "--end", str(days[1])]) == 0
        states = day_states(engine, days[0], days[-1], Horizon(datetime.now(UTC), 30))
        assert [states[d] for d in days] == ["loaded"] * 2 + ["not loaded"] * 4

        home = tmp_path / "deployment"
        with daemon(home, env | {"PIPELINES_PARTITIONS_START": str(days[0])}) as process:
            seconds = wait_until_loaded(engine, days, process, home)
        runs = launched(home)
        print(f"\nall 6 days loaded {seconds:.0f} s after the daemon started; its runs:")
        print(describe(runs))
        expected = {d: day_events(info, d) for d in days}
    stored = stored_per_day(engine)
    assert {d: stored.get(d, 0) for d in days} == expected  # exactly: nothing lost or doubled
    # the day before the nightly's 3 days came from the sensor, in one run of its own
    sensor_runs = [r for r in runs if r.tags.get(run_tags.TRIGGER) == catchup.TRIGGER]
    assert [
        (r.tags[run_tags.PARTITION_RANGE_START], r.tags[run_tags.PARTITION_RANGE_END])
        for r in sensor_runs
    ] == [(str(days[2]), str(days[2]))]


@pytest.mark.parametrize("nights", [1, 5, 40])
def test_after_a_pause_the_daemon_launches_one_range_run_for_the_missed_days(
    nights: int,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    horizon = Horizon(now, 30)
    # the nightly tick two hours ago, so that it does not tick during the test: what the
    # daemon launches is the sensor's doing
    tick = (now - timedelta(hours=2)).replace(second=0, microsecond=0)
    scope_last = tick.date() - timedelta(days=1)
    paused = scope_last - timedelta(days=nights)  # the last day loaded before the pause
    first = today - timedelta(days=45)
    with running_simulator(["--services", "3", "--days", "45", "--seed", "5"]) as info:
        env = {**os.environ, **simulator_env(info, database_url)}
        env.pop("MODELARTS_TOKEN", None)
        env.update(
            {
                "MODELARTS_RETENTION_DAYS": "30",
                "PIPELINES_NIGHTLY_CRON": f"{tick.minute} {tick.hour} * * *",
            }
        )
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        # loaded until the pause began (when those days were still in the API)
        monkeypatch.setenv("MODELARTS_RETENTION_DAYS", "36500")
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "operator"))
        (tmp_path / "operator").mkdir()
        (tmp_path / "operator" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        assert main(["backfill", "--start", str(first), "--end", str(paused)]) == 0

        home = tmp_path / "deployment"
        due_first = max(paused + timedelta(days=1), horizon.first_recoverable_day)
        due = [due_first + timedelta(days=i) for i in range((scope_last - due_first).days + 1)]
        with daemon(home, env | {"PIPELINES_PARTITIONS_START": str(first)}) as process:
            seconds = wait_until_loaded(engine, due, process, home)
            time.sleep(70)  # one more sensor evaluation: it must launch nothing more
        runs = launched(home)
        print(f"\n{len(due)} missed days loaded {seconds:.0f} s after the daemon started;")
        print(f"runs the daemon launched after the {nights}-night pause:\n{describe(runs)}")
        expected = {d: day_events(info, d) for d in due}
    assert [
        (r.tags[run_tags.PARTITION_RANGE_START], r.tags[run_tags.PARTITION_RANGE_END], r.status)
        for r in runs
    ] == [(str(due[0]), str(due[-1]), DagsterRunStatus.SUCCESS)]
    stored = stored_per_day(engine)
    assert {d: stored.get(d, 0) for d in due} == expected
    states = day_states(engine, first, scope_last, horizon)
    lost = sorted(d for d, s in states.items() if s == "unrecoverable")
    # the days between the pause and the horizon, never loaded, are lost; nothing else is
    assert lost == [paused + timedelta(days=i) for i in range(1, (due[0] - paused).days)]
    assert (len(lost) > 0) == (nights > 30)


def test_a_day_that_fails_for_good_is_tried_three_times_then_given_up_and_alerted(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    alert_webhook: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    tick = (now - timedelta(hours=2)).replace(second=0, microsecond=0)  # no tick in the test
    days = [today - timedelta(days=6 - i) for i in range(6)]
    failing = days[2]
    with running_simulator(["--services", "3", "--days", "6", "--seed", "13"]) as info:
        env = {**os.environ, **simulator_env(info, database_url)}
        env.pop("MODELARTS_TOKEN", None)
        env.update(
            {
                "MODELARTS_RETENTION_DAYS": "30",
                "PIPELINES_NIGHTLY_CRON": f"{tick.minute} {tick.hour} * * *",
                "PIPELINES_ALERT_WEBHOOK_URL": alert_webhook,
            }
        )
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "operator"))
        (tmp_path / "operator").mkdir()
        (tmp_path / "operator" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        assert main(["backfill", "--start", str(days[0]), "--end", str(days[1])]) == 0
        assert main(["backfill", "--start", str(days[3]), "--end", str(days[5])]) == 0
        # from now on the API refuses the project: every run fails at once (a 404 is permanent)
        env |= {"MODELARTS_PROJECT_ID": "no-such-project", "MODELARTS_TOKEN": "static-token"}

        home = tmp_path / "deployment"
        with daemon(home, env | {"PIPELINES_PARTITIONS_START": str(days[0])}) as process:
            deadline = time.monotonic() + 1200  # a bound on a hung test, not a measure
            while not [p for p in WebhookRecorder.received if p["event"] == "days_given_up"]:
                assert time.monotonic() < deadline, (home / "daemon.log").read_text()[-3000:]
                assert process.poll() is None, (home / "daemon.log").read_text()[-3000:]
                time.sleep(3)
            time.sleep(130)  # two more evaluations: no fourth run, no second alert
        runs = launched(home)
    assert [(r.tags.get("dagster/run_key"), r.status) for r in runs] == [
        (f"catchup-{failing}-{failing}-attempt{n}", DagsterRunStatus.FAILURE) for n in (1, 2, 3)
    ]
    events = [p["event"] for p in WebhookRecorder.received]
    assert events.count("days_given_up") == 1 and events.count("run_failed") == 3
    given_up = next(p for p in WebhookRecorder.received if p["event"] == "days_given_up")
    assert given_up["days"] == [failing.isoformat()]

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    capsys.readouterr()
    assert main(["status", "--start", str(days[0]), "--end", str(days[-1])]) == 0
    out = capsys.readouterr().out
    print(f"\nruns the daemon launched for a day that fails for good:\n{describe(runs)}\n{out}")
    states = {line[:10]: line[12:27].strip() for line in out.splitlines() if line[:2] == "20"}
    assert states == {str(d): "given up" if d == failing else "loaded" for d in days}
