"""Benchmark of the whole command: `modelarts-etl` as a process against dlt, on the same data.

Prints, per size, medians (min-max) over the repetitions of each side's whole-process wall time,
peak RSS and the API requests the simulator served to it, the row counts (checked equal) and the
ratio, never pass/fail. One simulator subprocess per size serves both sides over loopback; one
Postgres server (the embedded one in a temporary folder, or the server of $DATABASE_URL, where
`bench_*` databases are created and dropped) holds a fresh database per command. Repetitions
interleave: ours, dlt, ours, dlt, ...

- ours: `python -m pipelines.cli run|backfill --start D --end D` with MODELARTS_ENDPOINT and
  DATABASE_URL set (so the CLI starts no simulator and no embedded server), AK/SK signing,
  an unmigrated database (the command applies the migrations), a DAGSTER_HOME kept between the
  repetitions of a size (made once before them), no client-side rate limit (dlt has none).
- dlt: bench/dlt_pipeline.py in bench/.venv-dlt (see bench_load.py), the same range as one
  window per service, a fresh pipelines folder and database: a first load.
- dlt parallel (`--peer-workers N`, default 4, our MODELARTS_WORKERS default; 0: left out): the
  same pipeline with the events resource `parallelized` and an extract pool of N threads, so
  dlt too has N services' requests in flight at once.
- seconds: from the parent's fork to the child's exit; peak RSS: the child's `ru_maxrss`
  (wait4); requests: the simulator's /_sim/stats before and after, by kind (IAM tokens apart).
- min event requests: sum over services of max(1, ceil(events / 1000)), events counted in our
  database after the load (a service must be asked once to learn it has none).

Run: .venv/bin/python bench/bench_command.py                   # all three sizes
     .venv/bin/python bench/bench_command.py --latency-ms 50      # each API answer 50 ms late,
                                  # as in a real region (loopback answers in ~2 ms)
     .venv/bin/python bench/bench_command.py --sizes 20x1 200x3 --reps 5
     .venv/bin/python bench/bench_command.py --ours-python V/bin/python --ours-checkout DIR
                                  # another checkout as ours: before/after comparisons
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests
from bench_load import dlt_config, ensure_dlt_venv, fresh_database

REPO = Path(__file__).resolve().parents[1]
END_DATE = "2026-11-29"  # exclusive: the simulator's last day is the 28th
PAGE_LIMIT = 1000


@dataclass(frozen=True)
class Size:
    services: int
    days: int
    command: str  # `run` or `backfill`
    reps: int

    @property
    def label(self) -> str:
        return f"{self.services}x{self.days}"


SIZES = {
    "20x1": Size(20, 1, "run", 7),
    "200x3": Size(200, 3, "run", 5),
    "1000x30": Size(1000, 30, "backfill", 2),
}


@dataclass(frozen=True)
class Ours:
    """The interpreter and the folder our command runs with."""

    python: str
    checkout: Path


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    requests: dict[str, int]
    rows: int
    # ours only: seconds by part of the process (see `run_breakdown`)
    parts: dict[str, float] | None = None


# $BENCH_KEEP_OUTPUT: a folder that keeps each command's stdout and stderr (its log lines)
KEEP_OUTPUT = os.environ.get("BENCH_KEEP_OUTPUT")


def timed_process(
    command: list[str], env: dict[str, str], cwd: Path = REPO
) -> tuple[float, float, str, str, float]:
    """Wall seconds, peak RSS (MB), output and CPU seconds (user + system) of one child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise RuntimeError(
            f"{command[:4]} exited {child.returncode}:\n{stdout[-2000:]}\n{stderr[-4000:]}"
        )
    if KEEP_OUTPUT:
        kept = Path(KEEP_OUTPUT) / f"{Path(command[0]).name}-{time.time_ns()}"
        kept.with_suffix(".out").write_text(stdout, encoding="utf-8")
        kept.with_suffix(".err").write_text(stderr, encoding="utf-8")
    return seconds, usage.ru_maxrss / 1024, stdout, stderr, usage.ru_utime + usage.ru_stime


def served(url: str) -> dict[str, int]:
    """Requests the simulator has answered so far, by kind (all statuses)."""
    stats = requests.get(f"{url}/_sim/stats", timeout=30).json()
    return {kind: sum(by_status.values()) for kind, by_status in stats["requests"].items()}


def difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"select count(*) from {table}").fetchone()  # table: a constant
    assert row is not None
    return int(row[0])


def minimum_event_requests(database_url: str, services: int) -> int:
    with psycopg.connect(database_url) as conn:
        counts = [
            n for (n,) in conn.execute("select count(*) from service_events group by service_id")
        ]
    empty = services - len(counts)
    return sum(max(1, math.ceil(n / PAGE_LIMIT)) for n in counts) + empty


def run_ours(
    size: Size, info: Any, admin_url: str, home: Path, first: str, last: str, ours: Ours
) -> tuple[Measured, int]:
    from pipelines.simulator.process import pipeline_environment

    with fresh_database(admin_url, migrate=False) as database_url:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MODELARTS_", "HUAWEICLOUD_"))
        }
        env |= pipeline_environment(info)
        env |= {
            "DATABASE_URL": database_url,
            "DAGSTER_HOME": str(home),
            "PIPELINES_PARTITIONS_START": first,
            "MODELARTS_MAX_REQUESTS_PER_S": "0",
            # the fixed history's days stay loadable whatever today is (pipelines/horizon.py)
            "MODELARTS_RETENTION_DAYS": "36500",
        }
        command = [
            ours.python,
            "-m",
            "pipelines.cli",
            size.command,
            "--start",
            first,
            "--end",
            last,
        ]
        before = served(info.url)
        seconds, rss, stdout, _, cpu = timed_process(command, env, ours.checkout)
        used = difference(served(info.url), before)
        # the day rows printed as loads commit, not the attempts-by-day table after the run
        loads = stdout.split(f"\n{size.command} {first}..{last}: run ")[0]
        day_rows = [line for line in loads.splitlines() if line[:2] == "20"]
        if len(day_rows) != size.days:
            raise RuntimeError(f"expected {size.days} day rows, got:\n{stdout[-3000:]}")
        rows = count(database_url, "service_events")
        minimum = minimum_event_requests(database_url, size.services)
    return Measured(seconds, rss, used, rows, run_breakdown(home, seconds, cpu)), minimum


BREAKDOWN = """
import json
from dagster import DagsterInstance
instance = DagsterInstance.get()
record = instance.get_run_records(limit=1)[0]
steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(
    record.dagster_run.run_id) if s.start_time and s.end_time}
events = len(instance.all_logs(record.dagster_run.run_id))
print(json.dumps({"run": record.end_time - record.start_time, "steps": steps, "events": events}))
"""


def run_breakdown(home: Path, seconds: float, cpu: float) -> dict[str, float]:
    """Where the seconds of our newest run went, from the Dagster instance it wrote: each step
    (start to end, as Dagster records it), the run from start to end, what the process spent
    outside the run (imports, instance, pre-flight, the report printed after it), and the
    run's event count (each one a write to the instance's storage)."""
    out = subprocess.run(
        [sys.executable, "-c", BREAKDOWN],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    parts = {f"step {key}": value for key, value in sorted(found["steps"].items())}
    parts["process CPU (user + system)"] = cpu
    parts["run"] = found["run"]
    parts["outside the run"] = seconds - found["run"]
    parts["run events (count)"] = found["events"]
    return parts


def run_dlt(
    dlt_python: Path, info: Any, admin_url: str, first: str, last: str, workers: int = 0
) -> Measured:
    from pipelines.windows import day_start_ms

    with (
        fresh_database(admin_url, migrate=False) as database_url,
        tempfile.TemporaryDirectory() as pipes,
    ):
        end_ms = day_start_ms(date.fromisoformat(last) + timedelta(days=1))
        config = dlt_config(
            info, day_start_ms(date.fromisoformat(first)), end_ms, database_url, pipes
        ) | ({"workers": workers} if workers else {})
        command = [str(dlt_python), str(REPO / "bench" / "dlt_pipeline.py"), json.dumps(config)]
        env = {**os.environ, "RUNTIME__LOG_LEVEL": "WARNING"}
        before = served(info.url)
        seconds, rss, _, _, _ = timed_process(command, env)
        used = difference(served(info.url), before)
        used.pop("token", None)  # the parent fetched dlt's token (_iam_token) before it started
        rows = count(database_url, "dlt_bench.service_events")
    return Measured(seconds, rss, used, rows)


def warm_dagster_home(home: Path) -> None:
    """The instance's SQLite storage, made once, as a user's DAGSTER_HOME already is."""
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    code = "from dagster import DagsterInstance; DagsterInstance.get().get_runs(limit=1)"
    subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "DAGSTER_HOME": str(home)}, check=True
    )


def fmt(values: list[float], unit: str = "") -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f})"


def bench_size(
    size: Size,
    reps: int,
    admin_url: str,
    dlt_python: Path,
    runner: Ours,
    latency_ms: float = 0,
    peer_workers: int = 0,
    *,
    with_dlt: bool = True,
) -> dict[str, Any]:
    from pipelines.simulator.process import running_simulator

    sim_args = ["--services", str(size.services), "--days", str(size.days)]
    sim_args += ["--end-date", END_DATE, "--seed", "19", "--latency-ms", str(latency_ms)]
    end = date.fromisoformat(END_DATE) - timedelta(days=1)
    first, last = (end - timedelta(days=size.days - 1)).isoformat(), end.isoformat()
    ours: list[Measured] = []
    dlt: list[Measured] = []
    dlt_parallel: list[Measured] = []
    minimum = 0
    with running_simulator(sim_args, timeout_s=600) as info, tempfile.TemporaryDirectory() as home:
        print(
            f"{size.label}: {info.services} services, {info.events:,} events, {first}..{last}, "
            f"`modelarts-etl {size.command}`, {reps} repetitions, {latency_ms:g} ms per API answer",
            flush=True,
        )
        warm_dagster_home(Path(home))
        for rep in range(1, reps + 1):
            measured, minimum = run_ours(size, info, admin_url, Path(home), first, last, runner)
            ours.append(measured)
            print(f"  {rep} ours: {measured}", flush=True)
            if not with_dlt:
                continue
            measured = run_dlt(dlt_python, info, admin_url, first, last)
            dlt.append(measured)
            print(f"  {rep} dlt:  {measured}", flush=True)
            if peer_workers:
                measured = run_dlt(dlt_python, info, admin_url, first, last, peer_workers)
                dlt_parallel.append(measured)
                print(f"  {rep} dlt x{peer_workers}: {measured}", flush=True)
    return {
        "size": size,
        "ours": ours,
        "dlt": dlt,
        "dlt_parallel": dlt_parallel,
        "peer_workers": peer_workers,
        "minimum": minimum,
        "events": info.events,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(
        "| size | events | n | dlt s | ours s | ratio (dlt/ours) | dlt peak RSS MB "
        "| ours peak RSS MB | dlt event requests | ours event requests | min | ours/min "
        "| rows equal |"
    )
    print("|---|---:|---:|---|---|---|---|---|---:|---:|---:|---:|---|")
    for r in results:
        size, ours, dlt = r["size"], r["ours"], r["dlt"]
        ours_s = statistics.median(m.seconds for m in ours)
        ratio = f"{statistics.median(m.seconds for m in dlt) / ours_s:.2f}x" if dlt else "-"
        ours_events = statistics.median(m.requests.get("events", 0) for m in ours)
        dlt_events = (
            f"{statistics.median(m.requests.get('events', 0) for m in dlt):.0f}" if dlt else "-"
        )
        rows = {m.rows for m in ours} | {m.rows for m in dlt} | {m.rows for m in r["dlt_parallel"]}
        equal = "yes" if len(rows) == 1 else f"NO {sorted(rows)}"
        print(
            f"| {size.services} x {size.days} d (`{size.command}`) | {ours[0].rows:,} "
            f"| {len(ours)} "
            f"| {fmt([m.seconds for m in dlt])} | {fmt([m.seconds for m in ours])} | {ratio} "
            f"| {fmt([m.peak_rss_mb for m in dlt])} | {fmt([m.peak_rss_mb for m in ours])} "
            f"| {dlt_events} | {ours_events:.0f} | {r['minimum']} "
            f"| {ours_events / r['minimum']:.3f} | {equal} |"
        )
    parallel = [r for r in results if r["dlt_parallel"]]
    if parallel:
        print(
            "\nThe parallel peer (dlt, `parallelized` events resource, extract pool of N threads), "
            "same repetitions:\n"
            "| size | n | N | dlt parallel s | ours s | ratio (dlt parallel/ours) "
            "| dlt parallel peak RSS MB | dlt parallel event requests |\n"
            "|---|---:|---:|---|---|---|---|---:|"
        )
    for r in parallel:
        size, ours, peer = r["size"], r["ours"], r["dlt_parallel"]
        ratio = statistics.median(m.seconds for m in peer) / statistics.median(
            m.seconds for m in ours
        )
        print(
            f"| {size.services} x {size.days} d (`{size.command}`) | {len(peer)} "
            f"| {r['peer_workers']} | {fmt([m.seconds for m in peer])} "
            f"| {fmt([m.seconds for m in ours])} | {ratio:.2f}x "
            f"| {fmt([m.peak_rss_mb for m in peer])} "
            f"| {statistics.median(m.requests.get('events', 0) for m in peer):.0f} |"
        )
    print_breakdown(results)
    print()
    for r in results:
        ours, dlt = r["ours"], r["dlt"]
        if not dlt:
            continue
        print(
            f"{r['size'].label}: requests by kind, ours {ours[0].requests}, dlt {dlt[0].requests}"
        )


def print_breakdown(results: list[dict[str, Any]]) -> None:
    """Ours' seconds by part (`run_breakdown`), medians (min-max) over the repetitions."""
    print("\nWhere ours' seconds go (the Dagster run's steps, start to end; the run; outside it):")
    for r in results:
        ours = [m.parts for m in r["ours"] if m.parts]
        if not ours:
            continue
        names = sorted({name for parts in ours for name in parts})
        print(f"\n{r['size'].label}, n={len(ours)}:\n| part | seconds |\n|---|---|")
        for name in names:
            values = [parts[name] for parts in ours if name in parts]
            print(f"| {name} | {fmt(values)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=list(SIZES))
    parser.add_argument("--reps", type=int, help="repetitions of every size (default: per size)")
    parser.add_argument(
        "--ours-python",
        default=sys.executable,
        help="the interpreter that runs ours (default: this one)",
    )
    parser.add_argument(
        "--ours-checkout",
        type=Path,
        default=REPO,
        help="the folder ours runs in, whose `pipelines` it imports: another checkout for a "
        "before/after comparison (e.g. `git archive main | tar -x -C /tmp/main`)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0,
        help="the simulator answers every API request after this long, as a real region's "
        "round trip (default: 0, loopback speed)",
    )
    parser.add_argument(
        "--peer-workers",
        type=int,
        default=4,
        help="threads of the parallel dlt peer (dlt's `parallelized` events resource); "
        "0: no parallel peer (default 4: our MODELARTS_WORKERS default)",
    )
    parser.add_argument(
        "--no-dlt",
        action="store_true",
        help="ours only (before/after comparisons of two checkouts): no dlt side at all",
    )
    args = parser.parse_args()
    from pipelines.warehouse.embedded import scratch_server

    dlt_python = ensure_dlt_venv()
    runner = Ours(args.ours_python, args.ours_checkout)
    results = []
    with scratch_server("bench-command-pg-") as admin_url:
        for label in args.sizes:
            size = SIZES[label]
            reps = args.reps or size.reps
            results.append(
                bench_size(
                    size,
                    reps,
                    admin_url,
                    dlt_python,
                    runner,
                    args.latency_ms,
                    0 if args.no_dlt else args.peer_workers,
                    with_dlt=not args.no_dlt,
                )
            )
    print_table(results)


if __name__ == "__main__":
    main()
