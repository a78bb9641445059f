"""Fault scenarios shared by the CI subset (test_*.py here) and the full suite (`python -m
tests.reliability`): each injects faults into real runs and compares the warehouse with the
simulator's truth afterwards."""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import astuple, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests
from sqlalchemy import Engine, text

from pipelines.simulator.history import HistoryConfig
from pipelines.simulator.models import AttemptTruth, History
from pipelines.simulator.process import SimulatorInfo, pipeline_environment
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.marts import rebuild_marts
from pipelines.windows import day_start_ms
from tests import REPO
from tests.integration.conftest import bare_environ
from tests.integration.test_deployment_marts import (
    Row,
    expected_attempts,
    expected_failure_causes_daily,
    expected_outcomes_daily,
    expected_phase_durations_daily,
    expected_phases,
    snapshot,
    stored_attempts,
    stored_daily,
    stored_phases,
)

EventKey = tuple[str, int, str]


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


@dataclass
class Tally:
    """What a scenario did and what the warehouse looked like after each recovery."""

    name: str
    faults_injected: int = 0
    runs_recovered: int = 0
    rows_lost: int = 0
    rows_extra: int = 0
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)
    # kill_group_repeatedly_then_run: per round, the recovery run's seconds, the pool slots and
    # `running` loads the killed runs left behind, and the Dagster runs marked failed
    recovery_seconds: list[float] = field(default_factory=list)
    slots_left: list[int] = field(default_factory=list)
    loads_left: list[int] = field(default_factory=list)
    runs_reclaimed: list[int] = field(default_factory=list)
    # scenarios that also compare the marts with the truth: rows lost, extra and wrong there
    marts_checked: bool = False
    mart_rows_lost: int = 0
    mart_rows_extra: int = 0
    mart_rows_wrong: int = 0

    @property
    def exact(self) -> bool:
        marts = self.mart_rows_lost + self.mart_rows_extra + self.mart_rows_wrong
        return self.rows_lost == 0 and self.rows_extra == 0 and self.duplicates == 0 and not marts

    def assert_recovered_exactly(self, runs: int, faults: int = 1) -> None:
        """`runs` recovery runs finished, at least `faults` faults landed, and the stored events
        are exact: none lost, none extra, none doubled."""
        assert self.runs_recovered == runs, self.notes
        assert self.faults_injected >= faults, self.notes
        assert (self.rows_lost, self.rows_extra, self.duplicates) == (0, 0, 0), self.notes


def stored_keys(database_url: str) -> tuple[set[EventKey], int]:
    """The stored event keys, and how many rows repeat a key (must be 0)."""
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("select to_regclass('service_events')").fetchone()
        if exists is None or exists[0] is None:
            return set(), 0
        rows = conn.execute(
            "select service_id, occur_time, event_info from service_events"
        ).fetchall()
    keys = {(r[0], r[1], r[2]) for r in rows}
    return keys, len(rows) - len(keys)


def compare(tally: Tally, database_url: str, expected: set[EventKey]) -> None:
    stored, duplicates = stored_keys(database_url)
    tally.rows_lost += len(expected - stored)
    tally.rows_extra += len(stored - expected)
    tally.duplicates += duplicates


def recover(
    tally: Tally,
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    database_url: str,
    expected: set[EventKey],
) -> None:
    """The plain rerun after a fault: it must succeed and leave the exact event set."""
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tally.notes.append(f"recovery run failed: {done.stderr[-500:]}")
        return
    tally.runs_recovered += 1
    compare(tally, database_url, expected)


def _running_batches(database_url: str) -> int:
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            row = conn.execute(
                "select count(*) from load_batches where status = 'running'"
            ).fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0  # tables not created yet


def simulator_days(info: SimulatorInfo) -> tuple[str, str]:
    """The first and the last UTC day of the simulator's history (its end_date is exclusive)."""
    last = date.fromisoformat(info.end_date) - timedelta(days=1)
    return info.start_date, last.isoformat()


def simulator_day_windows(info: SimulatorInfo) -> list[tuple[int, int]]:
    """Each UTC day of the simulator's history as [start_ms, end_ms)."""
    first = date.fromisoformat(info.start_date)
    start = day_start_ms(first)
    days = (date.fromisoformat(info.end_date) - first).days
    return [(start + i * 86_400_000, start + (i + 1) * 86_400_000) for i in range(days)]


def pipeline_command(first_day: str, last_day: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run", "--start", first_day, "--end", last_day]


def pipeline_env(
    info: SimulatorInfo, database_url: str, dagster_home: Path, auth: str = "aksk"
) -> dict[str, str]:
    return {
        **bare_environ(),
        **pipeline_environment(info, auth),
        "DATABASE_URL": database_url,
        "DAGSTER_HOME": str(dagster_home),
        # the simulated days are fixed dates; the default first partition moves with the calendar
        "PIPELINES_PARTITIONS_START": "2024-01-01",
    }


@dataclass(frozen=True)
class CrashTarget:
    """What a kill scenario runs and checks: `modelarts-etl run` of the simulator's days, its
    Dagster homes under `dagster_home`, and the event keys the simulator serves."""

    info: SimulatorInfo
    days: tuple[str, str]
    expected: set[EventKey]
    dagster_home: Path

    @classmethod
    def of(cls, info: SimulatorInfo, dagster_home: Path) -> CrashTarget:
        return cls(info, simulator_days(info), expected_keys(info), dagster_home)


def _start(
    command: list[str], env: dict[str, str], cwd: Path, *, own_group: bool = False
) -> subprocess.Popen[bytes]:
    """The pipeline as a child process, its output discarded; `own_group`: in a process group of
    its own, which a kill can take down whole."""
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=own_group,
    )


def _wait_for_a_new_load(
    victim: subprocess.Popen[bytes],
    database_url: str,
    rng: random.Random,
    baseline: int = 0,
    within_s: float = 0.4,
) -> None:
    """Until the victim's load is in flight (more audit rows `running` than `baseline`), then a
    random 0-`within_s` more: extraction, COPY, the insert of new keys or the commit."""
    started = time.monotonic()
    while victim.poll() is None and time.monotonic() - started < 120:
        if _running_batches(database_url) > baseline:
            time.sleep(rng.uniform(0.0, within_s))
            return
        time.sleep(0.02)


def kill_and_recover(
    tally: Tally, target: CrashTarget, database_url: str, rng: random.Random
) -> None:
    """One round: start the pipeline, SIGKILL it at a random point, rerun it, compare.

    Half the kills come at a random time after start; the other half are aimed at a load in
    flight: once an audit row says `running`, after a random 0-400 ms (extraction, COPY into the
    stage, the insert of new keys or the commit).
    """
    env = pipeline_env(target.info, database_url, target.dagster_home)
    command = pipeline_command(*target.days)
    aimed = rng.random() < 0.5
    victim = _start(command, env, target.dagster_home)
    if aimed:
        _wait_for_a_new_load(victim, database_url, rng)
    else:
        # a run of the two days takes ~7 s here (process and Dagster start included): kill
        # within its first 5 s, or the fault may come after the run ended
        time.sleep(rng.uniform(0.5, 5.0))
    if victim.poll() is None:
        victim.send_signal(signal.SIGKILL)
        tally.faults_injected += 1
    else:
        tally.notes.append("a run finished before its kill")
    victim.wait()
    recover(tally, command, env, target.dagster_home, database_url, target.expected)


def _terminate_pipeline_backends(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=2) as conn:
        rows = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'modelarts-events-pipeline' and pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def _day_counts(database_url: str, day_windows: list[tuple[int, int]]) -> list[int] | None:
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            return [
                int(
                    conn.execute(
                        "select count(*) from service_events"
                        " where occur_time >= %s and occur_time < %s",
                        window,
                    ).fetchone()[0]  # type: ignore[index]
                )
                for window in day_windows
            ]
    except psycopg.Error:
        return None  # tables not created yet


def kill_connections_and_recover(
    tally: Tally, target: CrashTarget, database_url: str, rng: random.Random
) -> None:
    """One round: while the pipeline loads, terminate its database connections; meanwhile a
    reader keeps counting each day's rows and must only ever see none or all of a day; then
    rerun and compare."""
    day_windows = simulator_day_windows(target.info)
    full = [sum(1 for k in target.expected if lo <= k[1] < hi) for lo, hi in day_windows]
    env = pipeline_env(target.info, database_url, target.dagster_home)
    command = pipeline_command(*target.days)
    victim = _start(command, env, target.dagster_home)
    half_seen = 0
    killed = False
    started = time.monotonic()
    while victim.poll() is None and time.monotonic() - started < 300:
        counts = _day_counts(database_url, day_windows)
        if counts is not None:
            half_seen += sum(1 for c, f in zip(counts, full, strict=True) if c not in (0, f))
        if not killed and _running_batches(database_url):
            time.sleep(rng.uniform(0.0, 0.3))
            if _terminate_pipeline_backends(database_url):
                killed = True
                tally.faults_injected += 1
        time.sleep(0.02)
    victim.wait()
    if half_seen:
        tally.notes.append(f"a reader saw a partly loaded day {half_seen} times")
        tally.rows_lost += half_seen  # counted as a failure of the promise
    recover(tally, command, env, target.dagster_home, database_url, target.expected)


def _slots_held(dagster_home: Path) -> int:
    """Pool slots claimed in a local Dagster instance (SQLite under DAGSTER_HOME)."""
    index = dagster_home / "history" / "runs" / "index.db"
    if not index.is_file():
        return 0
    with sqlite3.connect(index) as conn:
        row = conn.execute("select count(*) from concurrency_slots where run_id is not null")
        return int(row.fetchone()[0])


def kill_group_repeatedly_then_run(
    tally: Tally,
    target: CrashTarget,
    database_url: str,
    rng: random.Random,
    kills: int = 3,
    bound_s: float = 300.0,
) -> None:
    """One round of issue #12: SIGKILL the whole process group of `modelarts-etl run` `kills`
    times (first at a random early point, then aimed at loads in flight), each kill leaving its
    Dagster run STARTED, its pool slot claimed and its load `running`; then a plain run must
    finish within `bound_s` and leave the exact event set.

    The instance is the repository's own dagster.yaml (pools of 2 slots, SQLite storage), fresh
    for each round: before the fix, two leaked slots made the next run spin forever.
    """
    home = target.dagster_home / f"group-{rng.randrange(10**9)}"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = pipeline_env(target.info, database_url, home)
    command = pipeline_command(*target.days)
    for k in range(kills):
        # loads the earlier kills left `running` do not count: aim at one of this run's
        baseline = _running_batches(database_url)
        victim = _start(command, env, home, own_group=True)
        if k == 0:
            time.sleep(rng.uniform(0.5, 4.0))
        else:
            # within 30 ms: a day's load of this history lasts tens of ms, and kills up to 400 ms
            # later came after its commit (0 loads left `running` in 5 of 5 rounds)
            _wait_for_a_new_load(victim, database_url, rng, baseline, within_s=0.03)
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
            tally.faults_injected += 1
        else:
            tally.notes.append("a run finished before its kill")
        victim.wait()
    tally.slots_left.append(_slots_held(home))
    tally.loads_left.append(_running_batches(database_url))
    began = time.monotonic()
    try:
        done = subprocess.run(
            command, env=env, cwd=home, capture_output=True, text=True, timeout=bound_s
        )
    except subprocess.TimeoutExpired:
        tally.notes.append(f"the run after the kills did not finish within {bound_s:.0f} s")
        return
    tally.recovery_seconds.append(time.monotonic() - began)
    if done.returncode != 0:
        tally.notes.append(f"the run after the kills failed: {done.stderr[-500:]}")
        return
    reclaimed = re.search(r"(\d+) run\(s\) of dead processes marked failed", done.stdout)
    tally.runs_reclaimed.append(int(reclaimed.group(1)) if reclaimed else 0)
    if _running_batches(database_url):
        tally.notes.append("loads still `running` after the recovery run")
        return
    tally.runs_recovered += 1
    compare(tally, database_url, target.expected)


# Issue 16: tokens that really live 2 s while `expires_at` claims an hour, 4 workers, 15% of
# requests faulty (every kind: a slow ModelArts answer checks its token 1.5 s late, a slow IAM
# answer delivers a token 1.5 s old), record offsets.
TOKEN_CHURN_SIM_ARGS = [
    "--credential-real-life-s", "2", "--token-ttl-s", "3600",
    "--fault-rate", "0.15", "--fault-kinds", "throttle,error_json,error_html,drop,truncate,slow",
    "--slow-s", "1.8", "--retry-after-s", "0", "--offset-mode", "record", "--iam-faults",
]  # fmt: skip
# New tokens one run may ask IAM for: one per second of the run (with tokens living 2 s and
# refreshed at 3/4 of the life seen, ~0.7 per second), plus one per Dagster run and worker.
TOKENS_PER_SECOND = 1.0


@dataclass
class ChurnRound:
    """One `run` under token churn: did it finish on the first try, and at what IAM cost."""

    exit_code: int
    seconds: float
    tokens_issued: int
    refused: int  # 401 answers
    faults: int  # faults injected (429, 5xx, drops, truncated, slow), IAM's included
    output: str

    def token_bound(self, dagster_runs: int, workers: int = 4) -> float:
        return TOKENS_PER_SECOND * self.seconds + dagster_runs * workers


def token_churn_run(
    info: SimulatorInfo, database_url: str, days: tuple[str, str], dagster_home: Path
) -> ChurnRound:
    """`modelarts-etl run` once, with IAM password auth and `MODELARTS_OFFSET_MODE=record`, on a
    simulator started with TOKEN_CHURN_SIM_ARGS; no rerun: a day lost is a day lost."""
    import requests

    env = {
        **pipeline_env(info, database_url, dagster_home, auth="password"),
        "MODELARTS_OFFSET_MODE": "record",
        "MODELARTS_PAGE_LIMIT": "20",
        "MODELARTS_WORKERS": "4",
        "MODELARTS_MAX_REQUESTS_PER_S": "0",
    }
    before = requests.get(f"{info.url}/_sim/stats", timeout=30).json()
    began = time.monotonic()
    done = subprocess.run(
        pipeline_command(*days), env=env, cwd=dagster_home, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    seconds = time.monotonic() - began
    after = requests.get(f"{info.url}/_sim/stats", timeout=30).json()
    refused = sum(
        int(after["requests"].get(kind, {}).get("401", 0))
        - int(before["requests"].get(kind, {}).get("401", 0))
        for kind in ("services", "events")
    )
    return ChurnRound(
        exit_code=done.returncode,
        seconds=seconds,
        tokens_issued=int(after["tokens_issued"]) - int(before["tokens_issued"]),
        refused=refused,
        faults=sum(after["faults"].values()) - sum(before["faults"].values()),
        output=(done.stdout + done.stderr)[-600:],
    )


# Issue 16, part 2: 7 days where 5% of the events become visible 1-30 h late, loaded by a nightly
# `run` of yesterday with a 48 h lookback; the marts must end equal to the truth.
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
LATE_CONFIG = HistoryConfig(services=12, days=7, end_date=date(2026, 11, 20))
LATE_SHARE = 0.05
LOOKBACK_HOURS = 48
# API faults under the nights (no `arrival`: it would add events outside the truth), on pages of
# 50 events so that a day takes several requests
LATE_FAULT_ARGS = [
    "--fault-rate", "0.15", "--fault-kinds", "throttle,error_json,error_html,drop,truncate,slow",
    "--slow-s", "0.2", "--retry-after-s", "0", "--duplicate-rate", "0.02",
]  # fmt: skip


def late_visibility(history: History, rng: random.Random) -> list[tuple[int, ServiceEvent]]:
    """Each event of the history with the time the API first shows it: LATE_SHARE of them 1-30 h
    after they occurred, the others at once."""
    visible: list[tuple[int, ServiceEvent]] = []
    for service_id, events in history.events_by_service.items():
        for e in events:
            late = rng.random() < LATE_SHARE
            delay = rng.randint(HOUR_MS, 30 * HOUR_MS) if late else 0
            visible.append((e.occur_time + delay, ServiceEvent(service_id, *astuple(e))))
    return visible


def late_simulator_args(config: HistoryConfig) -> list[str]:
    """A simulator with the services of `config` (same seed, same ids) whose own events lie in
    January 2000, outside every window of the nights: in the week it shows exactly what the
    scenario posts (post_events)."""
    return ["--services", str(config.services), "--seed", str(config.seed),
            "--days", "1", "--end-date", "2000-01-02"]  # fmt: skip


def post_events(info: SimulatorInfo, service_id: str, events: list[tuple[int, str, str]]) -> None:
    """Make (occur_time, event_type, event_info) events of a service visible in the simulator."""
    import requests

    body = {
        "service_id": service_id,
        "events": [{"occur_time": t, "event_type": k, "event_info": i} for t, k, i in events],
    }
    answer = requests.post(f"{info.url}/_sim/events", json=body, timeout=30)
    if answer.status_code >= 300:
        raise RuntimeError(f"POST /_sim/events: HTTP {answer.status_code}: {answer.text[:300]}")


MartCounts = tuple[int, int, int]  # rows lost, extra, wrong


def _count_differences(actual: dict[Row, Any], expected: dict[Row, Any]) -> MartCounts:
    def same(got: Any, want: Any) -> bool:
        if isinstance(want, tuple) and isinstance(got, tuple) and len(got) == len(want):
            return all(same(g, w) for g, w in zip(got, want, strict=True))
        if isinstance(want, float) and isinstance(got, float):
            return math.isclose(got, want, rel_tol=1e-12)
        return bool(got == want)

    wrong = sum(1 for k in expected.keys() & actual.keys() if not same(actual[k], expected[k]))
    return len(expected.keys() - actual.keys()), len(actual.keys() - expected.keys()), wrong


def marts_against_truth(engine: Engine, truth: list[AttemptTruth]) -> dict[str, MartCounts]:
    """Per mart, the rows the truth has and the mart lacks, the mart's rows the truth lacks, and
    the rows of the same key with other values (what assert_marts_equal_truth asserts equal)."""

    def keyed(rows: set[Row], width: int) -> dict[Row, Row]:
        return {r[:width]: r[width:] for r in rows}

    return {
        "deployment_attempts": _count_differences(
            keyed(stored_attempts(engine), 2), keyed(expected_attempts(truth), 2)
        ),
        "deployment_phases": _count_differences(
            keyed(stored_phases(engine), 4), keyed(expected_phases(truth), 4)
        ),
        "deployment_outcomes_daily": _count_differences(
            stored_daily(engine, "deployment_outcomes_daily", 2), expected_outcomes_daily(truth)
        ),
        "deployment_phase_durations_daily": _count_differences(
            stored_daily(engine, "deployment_phase_durations_daily", 3),
            expected_phase_durations_daily(truth),
        ),
        "deployment_failure_causes_daily": _count_differences(
            stored_daily(engine, "deployment_failure_causes_daily", 4),
            expected_failure_causes_daily(truth),
        ),
    }


def marts_against_rebuild(engine: Engine, days: list[date]) -> int:
    """Rows of the six marts (either side) that differ from a rebuild of every day from scratch;
    the marts are left as rebuilt."""
    incremental = snapshot(engine)
    with engine.begin() as conn:
        for table in incremental:
            conn.execute(text(f"delete from analytics.{table}"))
    rebuild_marts(engine, days)
    scratch = snapshot(engine)
    return sum(len(incremental[t] ^ scratch[t]) for t in incremental)


@dataclass
class LateRound:
    """One week of nightly runs over late events, and what the marts held afterwards."""

    events: int
    late: int  # events visible 1-30 h after they occurred
    api_faults: int  # 429, 5xx, drops, truncated and slow answers
    nights: int
    reruns: int  # nights whose run failed and was run again
    seconds: float
    failed: str | None  # a night still failing after its reruns
    against_truth: dict[str, MartCounts] = field(default_factory=dict)
    against_rebuild: int = 0  # mart rows differing from a rebuild from scratch
    queued_left: int = 0  # rows left in mart_rebuild_queue after the last night


def late_event_nights(
    info: SimulatorInfo,
    database_url: str,
    history: History,
    visible: list[tuple[int, ServiceEvent]],
    dagster_home: Path,
    offset_mode: str = "page",
) -> LateRound:
    """Night n (at 01:00 of day n) posts to the simulator what became visible by then and runs
    `modelarts-etl run` of yesterday with MODELARTS_LOOKBACK_HOURS=48; a night whose run fails is
    run again (twice at most). The nights go on two days past the data, until every late event
    is visible and inside a lookback. Then the marts are compared with the truth."""
    import requests

    env = {
        **pipeline_env(info, database_url, dagster_home),
        "MODELARTS_LOOKBACK_HOURS": str(LOOKBACK_HOURS),
        "MODELARTS_OFFSET_MODE": offset_mode,
        "MODELARTS_PAGE_LIMIT": "50",
        "MODELARTS_RETRY_BUDGET": "100000",
    }
    pending = sorted(visible, key=lambda v: v[0])
    days = (history.end_ms - history.start_ms) // DAY_MS
    first = datetime.fromtimestamp(history.start_ms / 1000, UTC).date()
    before = requests.get(f"{info.url}/_sim/stats", timeout=30).json()
    began = time.monotonic()
    round_ = LateRound(
        events=len(visible),
        late=sum(1 for at, e in visible if at > e.occur_time),
        api_faults=0, nights=0, reruns=0, seconds=0.0, failed=None,
    )  # fmt: skip
    for night in range(1, days + 3):
        now_ms = history.start_ms + night * DAY_MS + HOUR_MS
        shown = [e for at, e in pending if at <= now_ms]
        pending = [(at, e) for at, e in pending if at > now_ms]
        by_service: dict[str, list[tuple[int, str, str]]] = {}
        for e in shown:
            by_service.setdefault(e.service_id, []).append(
                (e.occur_time, e.event_type, e.event_info)
            )
        for service_id, events in by_service.items():
            post_events(info, service_id, events)
        yesterday = (first + timedelta(days=night - 1)).isoformat()
        for attempt in range(3):
            if attempt:
                round_.reruns += 1
            done = subprocess.run(
                pipeline_command(yesterday, yesterday), env=env, cwd=dagster_home,
                capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            if done.returncode == 0:
                break
        round_.nights += 1
        if done.returncode != 0:
            round_.failed = f"night {night} ({yesterday}): {done.stderr[-300:]}"
            break
    round_.seconds = time.monotonic() - began
    after = requests.get(f"{info.url}/_sim/stats", timeout=30).json()
    round_.api_faults = sum(
        int(after["faults"].get(k, 0)) - int(before["faults"].get(k, 0))
        for k in after["faults"]
        if k != "duplicate"
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select count(*) from mart_rebuild_queue").fetchone()
        round_.queued_left = int(row[0]) if row else 0
    engine = create_warehouse_engine(database_url)
    try:
        round_.against_truth = marts_against_truth(engine, history.attempts)
        all_days = [first + timedelta(days=i) for i in range(days + 2)]
        round_.against_rebuild = marts_against_rebuild(engine, all_days)
    finally:
        engine.dispose()
    return round_
