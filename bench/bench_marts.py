"""Benchmark of the incremental marts: time to rebuild one day as stored history grows 1x -> 10x.

Loads a generated history day by day through the project's loader, rebuilding each day's marts
as the pipeline would, then times re-materializations (median of --runs) of:
  - the latest day, with `base` days stored and then with `base x factor` days stored;
  - one early day, first with nothing after it and then with the whole history after it.
Prints figures, never pass/fail. Run: .venv/bin/python bench/bench_marts.py [--services 60]
(embedded Postgres in a temporary folder, or $DATABASE_URL's server: a new database either way).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, text

from pipelines.simulator.history import HistoryConfig, generate_history
from pipelines.simulator.models import History
from pipelines.source.models import ServiceEvent, TimeWindow
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.embedded import ensure_database, start_embedded_server
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import MartRefresh, rebuild_marts_for_day
from pipelines.warehouse.migrations import apply_migrations

DAY_MS = 86_400_000


def _window(history: History, index: int) -> TimeWindow:
    start = history.start_ms + index * DAY_MS
    return TimeWindow(start, start + DAY_MS)


def _load_days(engine: Engine, history: History, days: range) -> None:
    by_day: dict[int, list[ServiceEvent]] = {i: [] for i in days}
    for service_id, events in history.events_by_service.items():
        for e in events:
            index = (e.occur_time - history.start_ms) // DAY_MS
            if index in by_day:
                by_day[index].append(
                    ServiceEvent(service_id, e.occur_time, e.event_type, e.event_info)
                )
    for index in days:
        window = _window(history, index)
        with WindowLoad(engine, window) as load:
            load.add_events(by_day[index])
            load.commit()
        rebuild_marts_for_day(engine, window)


def _timed(engine: Engine, window: TimeWindow, runs: int) -> tuple[float, MartRefresh]:
    seconds = []
    refresh = None
    for _ in range(runs):
        refresh = rebuild_marts_for_day(engine, window)
        seconds.append(refresh.seconds)
    assert refresh is not None
    return statistics.median(seconds), refresh


def _stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        events = conn.execute(text("select count(*) from service_events")).scalar_one()
        attempts = conn.execute(
            text("select count(*) from analytics.deployment_attempts")
        ).scalar_one()
    return int(events), int(attempts)


def _report(label: str, engine: Engine, median: float, refresh: MartRefresh) -> float:
    events, attempts = _stored(engine)
    print(
        f"{label:<44} stored {events:>9,} events {attempts:>7,} attempts | "
        f"read {refresh.events_read:>7,} events, rebuilt {refresh.attempts:>5,} attempts "
        f"| median {median * 1000:8.1f} ms"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=60)
    parser.add_argument("--base-days", type=int, default=3)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--events-per-service-day", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    days = args.base_days * args.factor
    config = HistoryConfig(
        services=args.services,
        days=days,
        seed=5,
        end_date=dt.date(2026, 11, 29),
        events_per_service_day=args.events_per_service_day,
    )
    history = generate_history(config)
    print(
        f"history: {args.services} services x {days} days, {history.event_count:,} events, "
        f"{len(history.attempts):,} attempts; {args.runs} runs per figure (median)"
    )
    with tempfile.TemporaryDirectory() as folder:
        admin = os.environ.get("DATABASE_URL") or start_embedded_server(Path(folder))
        name = f"bench_marts_{uuid.uuid4().hex[:8]}"
        engine = create_warehouse_engine(ensure_database(admin, name))
        apply_migrations(engine)
        base = args.base_days
        early = _window(history, 1)

        _load_days(engine, history, range(0, base))
        latest_1x = _report(
            f"latest day ({base} days stored, 1x)",
            engine,
            *_timed(engine, _window(history, base - 1), args.runs),
        )
        early_1x = _report(
            "day 2 (nothing much after it)", engine, *_timed(engine, early, args.runs)
        )
        started = time.perf_counter()
        _load_days(engine, history, range(base, days))
        print(
            f"(loaded and rebuilt {days - base} more days in {time.perf_counter() - started:.1f} s)"
        )
        latest_10x = _report(
            f"latest day ({days} days stored, {args.factor}x)",
            engine,
            *_timed(engine, _window(history, days - 1), args.runs),
        )
        early_10x = _report(
            f"day 2 ({days - 2} days stored after it)", engine, *_timed(engine, early, args.runs)
        )
        print(
            f"ratio {args.factor}x/1x: latest day {latest_10x / latest_1x:.2f}, "
            f"day 2 {early_10x / early_1x:.2f} (flat is ~1)"
        )
        engine.dispose()
        if os.environ.get("DATABASE_URL"):
            import psycopg
            from psycopg import sql

            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
