"""Benchmark of the incremental marts: a new day's load and marts rebuild on a database holding a
long history against the same on an (almost) empty one, statement by statement.

Builds, in SQL (generate_series, no API, no loader), a synthetic history of --services services x
--days days (pipelines/simulator/synthetic.py: one attempt per service and day, ~30 events per
service-day by default) and the marts of its last --history-marts days (default 365), then,
--runs times, takes the next day:
loads it through the project's loader (WindowLoad, as the pipeline does) and rebuilds its marts
(rebuild_marts) in the big database and in a database that holds only the day before the first
new day, alternating which goes first. Prints per mart statement the median seconds on both
(min-max, n) and their ratio, the same for the load and the whole rebuild, and whether the new
days' marts are identical in both databases. Prints figures, never pass/fail.

    .venv/bin/python bench/bench_marts.py                        # 1,000 services x 365 days
    .venv/bin/python bench/bench_marts.py --days 3650 --data-dir /work/pg-bench  # and keep it

Embedded Postgres in a temporary folder (or in --data-dir, where the big database is kept and
reused by later runs, each taking the days after the last one stored), or $DATABASE_URL's
server: it creates `bench_marts_*` databases there (the empty one is dropped at the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from pipelines.simulator.synthetic import insert_synthetic_history, synthetic_day
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.embedded import ensure_database, scratch_server
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import explain_marts, rebuild_marts
from pipelines.warehouse.migrations import apply_migrations
from pipelines.windows import DAY_MS, TimeWindow, day_start_ms

MART_TABLES = {
    "deployment_attempts": "attempt_date",
    "deployment_phases": "attempt_date",
    "deployment_outcomes_daily": "attempt_date",
    "deployment_phase_durations_daily": "attempt_date",
    "deployment_failure_causes_daily": "attempt_date",
    "unclassified_event_texts_daily": "event_date",
}


@contextmanager
def _connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def _load(engine: Engine, day: dt.date, events: Sequence[ServiceEvent]) -> float:
    started = time.perf_counter()
    with WindowLoad(engine, TimeWindow(day_start_ms(day), day_start_ms(day) + DAY_MS)) as load:
        for i in range(0, len(events), 10_000):  # in blocks, as extraction hands them over
            load.add_encoded(load.encode_events(events[i : i + 10_000]))
        load.commit()
    return time.perf_counter() - started


def _stored_days(conn: psycopg.Connection[Any]) -> tuple[dt.date | None, int]:
    row = conn.execute(
        "select max(attempt_date), (select count(*) from service_events)"
        " from analytics.deployment_attempts"
    ).fetchone()
    assert row is not None
    return row[0], int(row[1])


def build_big(url: str, args: argparse.Namespace, first_day: dt.date) -> tuple[Engine, dt.date]:
    """The big database, built unless a complete one is there; returns it and its last day."""
    engine = create_warehouse_engine(url)
    apply_migrations(engine)
    with _connect(url) as conn:
        conn.execute("create table if not exists bench_history (built_at timestamptz)")
        built = conn.execute("select count(*) from bench_history").fetchone()
        if built is not None and built[0]:
            last, events = _stored_days(conn)
            assert last is not None
            print(f"big database reused: {events:,} events, last day with marts {last}")
            return engine, last
        started = time.perf_counter()
        rows = insert_synthetic_history(
            conn, first_day, args.days, args.services, args.runtime_events
        )
        inserted = time.perf_counter() - started
        print(f"history: {rows:,} events inserted in {inserted:.0f} s", flush=True)
    started = time.perf_counter()
    last = first_day + dt.timedelta(days=args.days - 1)
    day = last - dt.timedelta(days=min(args.days, args.history_marts) - 1)
    while day <= last:
        chunk = [day + dt.timedelta(days=i) for i in range(args.history_marts_days)]
        rebuild_marts(engine, [d for d in chunk if d <= last])
        day = chunk[-1] + dt.timedelta(days=1)
    print(
        f"marts of the history's last {min(args.days, args.history_marts)} days rebuilt in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    with _connect(url) as conn:
        started = time.perf_counter()
        conn.execute("vacuum analyze")
        conn.execute("insert into bench_history values (now())")
        size = conn.execute(
            "select pg_size_pretty(pg_table_size('service_events')),"
            " pg_size_pretty(pg_indexes_size('service_events'))"
        ).fetchone()
        print(f"vacuum analyze {time.perf_counter() - started:.0f} s; service_events {size}")
    return engine, last


def mart_rows(url: str, since: dt.date) -> dict[str, set[str]]:
    """Every mart table's rows of the days from `since`, without refresh timestamps."""
    out = {}
    with _connect(url) as conn:
        for table, day_column in MART_TABLES.items():
            rows = conn.execute(
                sql.SQL(
                    "select (to_jsonb(t) - 'refreshed_at')::text from analytics.{} as t"
                    " where {} >= %s"
                ).format(sql.Identifier(table), sql.Identifier(day_column)),
                (since,),
            ).fetchall()
            out[table] = {r[0] for r in rows}
    return out


def _figure(values: list[float]) -> str:
    return (
        f"{statistics.median(values):8.3f} ({min(values):.3f}-{max(values):.3f})" if values else "-"
    )


def _compare_range(engine: Engine, last_day: dt.date, args: argparse.Namespace) -> None:
    """The big database's last --range-days days rebuilt in one pass against one pass per day
    (re-materializations: nothing queued), interleaved."""
    days = [last_day - dt.timedelta(days=i) for i in reversed(range(args.range_days))]
    one_pass: list[float] = []
    per_day: list[float] = []
    for run in range(args.runs):
        for mode in ("range", "days") if run % 2 == 0 else ("days", "range"):
            if mode == "range":
                refresh = rebuild_marts(engine, days)
                assert refresh.passes == 1
                one_pass.append(refresh.seconds)
            else:
                per_day.append(sum(rebuild_marts(engine, [d]).seconds for d in days))
    ratio = statistics.median(per_day) / statistics.median(one_pass)
    print(
        f"\nbig database, {len(days)} days {days[0]} to {days[-1]}, seconds, median (min-max) of "
        f"n={args.runs}:\n| rebuild | seconds |\n|---|---:|\n"
        f"| one pass over the {len(days)} days | {_figure(one_pass)} |\n"
        f"| {len(days)} passes of one day | {_figure(per_day)} |\n"
        f"one pass is {ratio:.2f}x faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runtime-events", type=int, default=21)
    parser.add_argument("--runs", type=int, default=3, help="new days loaded and rebuilt")
    parser.add_argument(
        "--history-marts", type=int, default=365, help="days of history whose marts are built"
    )
    parser.add_argument("--history-marts-days", type=int, default=7, help="days per rebuild")
    parser.add_argument("--range-days", type=int, default=7, help="days of the range comparison")
    parser.add_argument("--data-dir", type=Path, help="keep the embedded server here")
    parser.add_argument("--explain", action="store_true", help="print the big database's plans")
    args = parser.parse_args()

    first_day = dt.date(2026, 11, 30) - dt.timedelta(days=args.days)
    with scratch_server("bench-marts-pg-", args.data_dir) as admin:
        big_url = ensure_database(admin, f"bench_marts_{args.services}x{args.days}")
        big, last_day = build_big(big_url, args, first_day)
        empty_name = f"bench_marts_empty_{uuid.uuid4().hex[:8]}"
        empty_url = ensure_database(admin, empty_name)
        empty = create_warehouse_engine(empty_url)
        apply_migrations(empty)
        try:
            with _connect(empty_url) as conn:
                prior = synthetic_day(conn, last_day, args.services, args.runtime_events)
            _load(empty, last_day, prior)
            rebuild_marts(empty, [last_day])
            timings: dict[str, dict[str, list[float]]] = {"big": {}, "empty": {}}
            for run in range(args.runs):
                day = last_day + dt.timedelta(days=run + 1)
                with _connect(empty_url) as conn:
                    events = synthetic_day(conn, day, args.services, args.runtime_events)
                order = [("big", big), ("empty", empty)]
                for name, engine in order if run % 2 == 0 else order[::-1]:
                    figures = timings[name]
                    figures.setdefault("load (WindowLoad)", []).append(_load(engine, day, events))
                    refresh = rebuild_marts(engine, [day])
                    figures.setdefault("marts rebuild (rebuild_marts)", []).append(refresh.seconds)
                    for step, seconds in refresh.step_seconds.items():
                        figures.setdefault(step, []).append(seconds)
                print(
                    f"day {day}: {len(events):,} events, {refresh.services} services, "
                    f"{refresh.events_read:,} events read, {refresh.attempts} attempts rebuilt",
                    flush=True,
                )
            identical = mart_rows(big_url, last_day) == mart_rows(empty_url, last_day)
            with _connect(big_url) as conn:
                _, stored = _stored_days(conn)
            print()
            print(
                f"big: {args.services} services x {args.days} days of history + new days, "
                f"{stored:,} events; empty: the day before plus the new days. "
                f"Seconds, median (min-max) of n={args.runs}."
            )
            print("| statement | big | empty | big/empty |\n|---|---:|---:|---:|")
            for step in timings["big"]:
                big_s, empty_s = timings["big"][step], timings["empty"][step]
                ratio = statistics.median(big_s) / max(statistics.median(empty_s), 1e-9)
                print(f"| {step} | {_figure(big_s)} | {_figure(empty_s)} | {ratio:.2f} |")
            print(f"\nnew days' marts identical in both databases: {identical}")
            _compare_range(big, last_day + dt.timedelta(days=args.runs), args)
            if args.explain:
                for step, plan in explain_marts(big, [last_day]).items():
                    print(f"\n-- {step}\n{plan}")
        finally:
            big.dispose()
            empty.dispose()
            with _connect(admin) as conn:
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(empty_name)
                    )
                )


if __name__ == "__main__":
    main()
