"""The limits of real regions, demonstrated with the whole command: a per-user quota, a gateway
clock 20 minutes ahead, the region table and an unknown region (issue 30's "done when").

Prints one row per scenario: requests (ModelArts calls the simulator answered, refusals
included), throttled (its 429 refusals), seconds (the command's wall time), and the result:
`exact` when the warehouse holds exactly the simulator's events of the day. For the quota it
also prints the time the quota itself imposes on the calls admitted, (ceil(admitted / quota) - 1)
windows, and the bound 1.5x that + 30 s. Never pass/fail.

Run: .venv/bin/python bench/bench_limits.py                    # 150 services, 100 calls/min
     .venv/bin/python bench/bench_limits.py --services 30 --quota 20 --window-s 10   # quick
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import requests
from bench_command import timed_process, warm_dagster_home
from bench_load import fresh_database

REPO = Path(__file__).resolve().parents[1]
END_DATE = "2026-11-29"  # exclusive
DAY = "2026-11-28"


def expected(url: str) -> set[tuple[Any, ...]]:
    body = requests.get(f"{url}/_sim/expected", timeout=60).json()
    return {
        (e["service_id"], e["occur_time"], e["event_type"], e["event_info"]) for e in body["events"]
    }


def stored(database_url: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select service_id, occur_time, event_type, event_info from service_events"
        ).fetchall()
    return {tuple(r) for r in rows}


def modelarts_calls(url: str) -> tuple[int, int]:
    """(ModelArts calls answered, of which refused for the quota)."""
    stats = requests.get(f"{url}/_sim/stats", timeout=30).json()
    calls = sum(sum(stats["requests"].get(kind, {}).values()) for kind in ("services", "events"))
    return calls, int(stats["faults"].get("quota", 0))


def run_command(sim_args: list[str], admin_url: str, home: Path) -> dict[str, Any]:
    from pipelines.simulator.process import pipeline_environment, running_simulator

    with (
        running_simulator([*sim_args, "--days", "1", "--end-date", END_DATE]) as info,
        fresh_database(admin_url, migrate=False) as database_url,
    ):
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MODELARTS_", "HUAWEICLOUD_"))
        }
        env |= pipeline_environment(info)
        env |= {"DATABASE_URL": database_url, "DAGSTER_HOME": str(home),
                "PIPELINES_PARTITIONS_START": DAY}  # fmt: skip
        command = [sys.executable, "-m", "pipelines.cli", "run", "--start", DAY, "--end", DAY]
        seconds, _, stdout, stderr, _ = timed_process(command, env, REPO)
        calls, throttled = modelarts_calls(info.url)
        exact = stored(database_url) == expected(info.url)
        offset_logged = "clock is" in stderr
    return {
        "requests": calls,
        "throttled": throttled,
        "seconds": seconds,
        "result": "exact" if exact else "DIFFERS",
        "stdout": stdout,
        "offset_logged": offset_logged,
    }


def region_line(env: dict[str, str], argv: list[str]) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MODELARTS_", "HUAWEICLOUD_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv],
        env={**full, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=150)
    parser.add_argument("--quota", type=int, default=100, help="calls per window")
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--clock-services", type=int, default=20)
    parser.add_argument(
        "--quota-answer",
        choices=("stated", "bare", "retry-after"),
        default="stated",
        help="the 429's form (stated: the real gateway's, limit in the message)",
    )
    args = parser.parse_args()
    from pipelines.warehouse.embedded import scratch_server

    rows = []
    with scratch_server("bench_limits_") as admin_url, tempfile.TemporaryDirectory() as home:
        warm_dagster_home(Path(home))
        quota = run_command(
            ["--services", str(args.services), "--seed", "30", "--quota-per-minute",
             str(args.quota), "--quota-window-s", str(args.window_s),
             "--quota-answer", args.quota_answer],
            admin_url, Path(home),
        )  # fmt: skip
        admitted = quota["requests"] - quota["throttled"]
        floor_s = (math.ceil(admitted / args.quota) - 1) * args.window_s
        bound_s = 1.5 * floor_s + 30
        name = f"quota {args.quota}/{args.window_s:g}s {args.quota_answer}, {args.services} svc"
        rows.append((name,
                     quota, f"quota floor {floor_s:.0f} s, bound {bound_s:.0f} s"))  # fmt: skip
        clock = run_command(
            ["--services", str(args.clock_services), "--seed", "31", "--clock-offset-s", "1200"],
            admin_url, Path(home),
        )  # fmt: skip
        logged = "offset logged" if clock["offset_logged"] else "offset not in the log"
        rows.append((f"gateway clock +20 min, {args.clock_services} services", clock, logged))
    print(f"{'scenario':<44}{'requests':>9}{'throttled':>10}{'seconds':>9}  result")
    for name, r, note in rows:
        print(f"{name:<44}{r['requests']:>9}{r['throttled']:>10}{r['seconds']:>9.1f}  "
              f"{r['result']} ({note})")  # fmt: skip
    code = (
        "from pipelines.settings import region_endpoint; "
        "print(region_endpoint('modelarts', 'ap-southeast-1'))"
    )
    resolved = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    print(f"{'region ap-southeast-1':<44}{'-':>9}{'-':>10}{'-':>9}  {resolved}")
    exit_code, line = region_line({"HUAWEICLOUD_REGION": "xx-moon-1", "HUAWEICLOUD_SDK_AK": "AK",
                                   "HUAWEICLOUD_SDK_SK": "SK"}, ["run"])  # fmt: skip
    lines = line.count("\n") + 1
    print(f"{'unknown region xx-moon-1':<44}{'-':>9}{'-':>10}{'-':>9}  exit {exit_code}, "
          f"{lines} line: {line[:90]}...")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
