"""Benchmark of the rule-driven text classification against the hard-coded CASE it replaced.

One database, one loaded history (as bench_marts.py), one day's rebuild run alternately with the
mart SQL of this checkout and with that of a baseline commit (`git show REV:sql/...`, default the
commit before issue 18), so machine noise hits both alike. Prints, per variant, the median (min-max,
n) of the whole rebuild and of its event classification step (stage_deployment_events.sql), and
the ratios (--steps: each step's too). Never pass/fail. Run:
.venv/bin/python bench/bench_text_rules.py [--runs 15] [--baseline REV] [--v2-every 2]
(--v2-every N: every Nth service loaded as v2 records instead of v1 events, issue 28;
--range-days N: the last N days rebuilt in one pass, as a backfill's marts, their days loaded
without marts, issue 32; --empty-marts: the mart tables emptied before each rebuild, untimed).
Each step runs with the join settings and PASS_SETTINGS its commit's marts.py gives it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine

from pipelines.simulator.history import History, HistoryConfig, generate_history
from pipelines.simulator.records import event_records
from pipelines.source.models import ServiceEvent
from pipelines.source.records import EventRecord as SourceRecord
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.embedded import ensure_database, scratch_server
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import day_parameters, rebuild_marts, step_statement
from pipelines.warehouse.migrations import apply_migrations
from pipelines.warehouse.records import load_records
from pipelines.warehouse.transactions import pooled_connection
from pipelines.windows import TimeWindow

REPO = Path(__file__).resolve().parents[1]
DAY_MS = 86_400_000
EVENTS_STEP = "marts/stage_deployment_events.sql"
MART_TABLES = (
    "deployment_attempts",
    "deployment_phases",
    "deployment_outcomes_daily",
    "deployment_phase_durations_daily",
    "deployment_failure_causes_daily",
    "unclassified_event_texts_daily",
)


def _window(history: History, index: int) -> TimeWindow:
    start = history.start_ms + index * DAY_MS
    return TimeWindow(start, start + DAY_MS)


def _load_days(
    engine: Engine, history: History, days: range, v2: frozenset[str], marts_until: int
) -> None:
    """Each day's v1 events through the v1 loader, and the `v2` services' records as of the
    day's end through the v2 loader (a record that grew comes again), then the day's marts when
    its index is below `marts_until`."""
    by_day: dict[int, list[ServiceEvent]] = {i: [] for i in days}
    for service_id, events in history.events_by_service.items():
        if service_id in v2:
            continue
        for e in events:
            index = (e.occur_time - history.start_ms) // DAY_MS
            if index in by_day:
                by_day[index].append(
                    ServiceEvent(service_id, e.occur_time, e.event_type, e.event_info)
                )
    for index in days:
        window = _window(history, index)
        with WindowLoad(engine, window) as load:
            loaded = by_day[index]
            for i in range(0, len(loaded), 10_000):  # in blocks, as extraction hands them over
                load.add_encoded(load.encode_events(loaded[i : i + 10_000]))
            load.commit()
        if v2:
            records = [
                SourceRecord(*dataclasses.astuple(r))
                for service_id in sorted(v2)
                for r in event_records(
                    service_id, history.events_by_service[service_id], window.end_ms - 1
                )
            ]
            load_records(engine, window, records, [])
        if index < marts_until:
            rebuild_marts(engine, [day_parameters(window)["day"]])


def _git_show(rev: str, path: str) -> str:
    return subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout


def pass_settings_of(rev: str | None) -> dict[str, str]:
    """marts.py's PASS_SETTINGS (server settings of a pass) of this checkout or a commit's."""
    if rev is None:
        marts_py = (REPO / "pipelines/warehouse/marts.py").read_text(encoding="utf-8")
    else:
        marts_py = _git_show(rev, "pipelines/warehouse/marts.py")
    found = re.search(r"^PASS_SETTINGS(?:: [^=]+)? = \{(.*)\}$", marts_py, re.MULTILINE)
    return dict(re.findall(r'"(\w+)": "(\w+)"', found.group(1))) if found else {}


def steps_of(rev: str | None) -> list[tuple[str, str, bool]]:
    """(step, SQL, index loop) of the rebuild: this checkout's (rev None) or a commit's; index
    loop: hash and merge joins off for the step (marts.py's _INDEX_LOOP; False before it)."""
    if rev is None:
        marts_py = (REPO / "pipelines/warehouse/marts.py").read_text(encoding="utf-8")
    else:
        marts_py = _git_show(rev, "pipelines/warehouse/marts.py")
    # the step list: a tuple of names in older commits, a dict of names to join flags now
    begin = re.search(r"^_STEPS = [({]\n", marts_py, re.MULTILINE)
    end = re.compile(r"^[)}]\n", re.MULTILINE).search(marts_py, begin.end()) if begin else None
    assert begin is not None and end is not None, "no _STEPS in marts.py"
    steps_block = marts_py[begin.end() : end.start()]
    # a step is a file, or "file:table" (the file's template for that mart table)
    names = re.findall(r'"(marts/[a-z_]+\.sql(?::[a-z_]+)?)"', steps_block)
    loops = set(re.findall(r'"(marts/[a-z_]+\.sql(?::[a-z_]+)?)": _INDEX_LOOP', steps_block))
    if rev is None:
        return [(n, step_statement(n).as_string(), n in loops) for n in names]
    return [
        (
            n,
            on_this_schema(
                step_statement(n, _git_show(rev, f"sql/{n.partition(':')[0]}")).as_string()
            ),
            n in loops,
        )
        for n in names
    ]


def on_this_schema(statement: str) -> str:
    """A baseline statement made to run on this checkout's schema: since migration 0013 the rule
    coverage has a row per day and generation, so an upsert of a commit before it names the new
    key (its rows take the default generation, v1). Nothing else differs for v1 data."""
    return statement.replace(
        "on conflict (event_date) do update", "on conflict (event_date, generation) do update"
    )


def rebuild(
    engine: Engine,
    steps: list[tuple[str, str, bool]],
    params: dict[str, Any],
    step_seconds: dict[str, list[float]] | None = None,
    settings: dict[str, str] | None = None,
    empty_marts: bool = False,
) -> tuple[float, float]:
    """One day's rebuild with these steps, committed: (seconds in all, of the events step);
    each step's seconds (its analyze included) appended to `step_seconds` when given."""
    with pooled_connection(engine) as conn:
        cur = psycopg.ClientCursor(conn)
        if empty_marts:  # untimed: the marts of the days as a backfill's first pass finds them
            cur.execute(f"truncate {', '.join(f'analytics.{t}' for t in MART_TABLES)}")
        started = time.perf_counter()
        events_step = 0.0
        for setting, value in (settings or {}).items():
            cur.execute("select set_config(%s, %s, true)", (setting, value))
        for name, sql, index_loop in steps:
            step_started = time.perf_counter()
            for setting in ("enable_hashjoin", "enable_mergejoin"):
                cur.execute(f"set local {setting} = {'off' if index_loop else 'on'}")
            cur.execute(sql, params)
            if name == EVENTS_STEP:
                events_step = time.perf_counter() - step_started
            staged = re.search(r"create temporary table (\w+)", sql)
            if staged:
                cur.execute(f"analyze {staged.group(1)}")
            if step_seconds is not None:
                step_seconds.setdefault(name, []).append(time.perf_counter() - step_started)
        conn.commit()
        return time.perf_counter() - started, events_step


def _summary(values: list[float]) -> str:
    if not values:
        return f"{'-':>8}"
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):8.1f} ms ({min(ms):.1f}-{max(ms):.1f}, n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=60)
    parser.add_argument("--days", type=int, default=9)
    parser.add_argument(
        "--events-per-service-day", type=int, default=150, help="0: the simulator's own density"
    )
    parser.add_argument(
        "--range-days", type=int, default=1, help="days rebuilt in one pass (the last ones)"
    )
    parser.add_argument("--vocabulary", default="reference", help="reference | console | mix")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--baseline", default="bf728e6", help="commit of the baseline mart SQL")
    parser.add_argument(
        "--baseline-name", default="baseline CASE", help="how the baseline is named in the output"
    )
    parser.add_argument("--steps", action="store_true", help="print each step's medians too")
    parser.add_argument(
        "--empty-marts",
        action="store_true",
        help="empty the mart tables before each rebuild (untimed): a backfill's first pass",
    )
    parser.add_argument(
        "--v2-every",
        type=int,
        default=0,
        help="every Nth service is a new-version (v2) one, loaded as records (a baseline before "
        "migration 0013 rebuilds only the v1 ones)",
    )
    args = parser.parse_args()

    config = HistoryConfig(
        services=args.services,
        days=args.days,
        seed=5,
        end_date=dt.date(2026, 11, 29),
        events_per_service_day=args.events_per_service_day or None,
        vocabulary=args.vocabulary,
    )
    history = generate_history(config)
    variants = {args.baseline_name: steps_of(args.baseline), "this checkout": steps_of(None)}
    settings = {
        args.baseline_name: pass_settings_of(args.baseline),
        "this checkout": pass_settings_of(None),
    }
    with scratch_server("bench-text-rules-pg-") as admin:
        name = f"bench_rules_{uuid.uuid4().hex[:8]}"
        engine = create_warehouse_engine(ensure_database(admin, name))
        apply_migrations(engine)
        v2 = frozenset(
            s.service_id
            for i, s in enumerate(history.services)
            if args.v2_every and i % args.v2_every == 0
        )
        loaded = time.perf_counter()
        _load_days(engine, history, range(args.days), v2, args.days - args.range_days)
        with pooled_connection(engine, autocommit=True) as conn:
            conn.execute("vacuum analyze")
        loaded = time.perf_counter() - loaded
        window = _window(history, args.days - 1)
        day = day_parameters(window)["day"]
        first = day - dt.timedelta(days=args.range_days - 1)
        # the baseline's steps bind the day, this checkout's the pass's days (rebuild_marts)
        params = day_parameters(window) | {
            "first_day": first,
            "last_day": day,
            "partition_days": [first + dt.timedelta(days=i) for i in range(args.range_days)],
        }
        print(
            f"history: {args.services} services x {args.days} days, {history.event_count:,} events"
            f" ({args.vocabulary}; {len(v2)} services as v2 records; loaded in {loaded:.0f} s);"
            f" rebuilding the last {args.range_days} day(s) in one pass,"
            f" variants alternating, {args.runs} runs"
        )
        for name, steps in variants.items():  # warm both
            rebuild(engine, steps, params, settings=settings[name], empty_marts=args.empty_marts)
        totals: dict[str, list[float]] = {k: [] for k in variants}
        stage: dict[str, list[float]] = {k: [] for k in variants}
        per_step: dict[str, dict[str, list[float]]] = {k: {} for k in variants}
        for _ in range(args.runs):
            for name, steps in variants.items():
                total, events_step = rebuild(
                    engine, steps, params, per_step[name], settings[name], args.empty_marts
                )
                totals[name].append(total)
                stage[name].append(events_step)
        if args.steps:
            for step in dict.fromkeys(s for v in per_step.values() for s in v):
                print(
                    f"{step:<58}"
                    + " | ".join(_summary(per_step[v].get(step, [])) for v in variants)
                )
        for variant in variants:
            print(
                f"{variant:<16} rebuild {_summary(totals[variant])}"
                f" | events step {_summary(stage[variant])}"
            )
        base, ours = args.baseline_name, "this checkout"
        ratio = statistics.median(totals[ours]) / statistics.median(totals[base])
        step_ratio = statistics.median(stage[ours]) / statistics.median(stage[base])
        print(f"ratio this checkout/baseline: rebuild {ratio:.2f}, events step {step_ratio:.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()
