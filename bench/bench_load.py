"""Benchmark of the load path against Postgres' own limits and against dlt, in one run.

Prints a table of medians (and min-max) over --runs runs, never pass/fail. Every figure is
measured in a child process (peak RSS via getrusage) against one Postgres server (the embedded
one in a temporary folder, or the server of $DATABASE_URL) and one simulator subprocess:

- ours, first load / rerun: `pipelines.ingest.load_events_window`, the function the Dagster asset
  `service_events` runs per day (not through `materialize`): list services over HTTP, upsert them,
  fetch every service's events of the day with the worker threads, load them, commit.
- index-bound COPY limit: the same rows COPYed (binary, bytes already in memory) into an empty
  table created `like service_events including all` (same columns, generated columns, indexes);
  the unindexed COPY is printed as the raw limit.
- load stage alone: WindowLoad fed the same rows from memory into an empty warehouse (encoding
  them as COPY text in the same thread, COPY into service_events per chunk, commit), as a share of
  the index-bound limit's rows/s.
- dlt 1.31 (`dlt[postgres]`, rest_api source, page-index paging, merge on
  (service_id, occur_time, event_info)), installed into bench/.venv-dlt on first use.

Run: .venv/bin/python bench/bench_load.py            # 2,000 services x 1 day x 500 events, 3 runs
     .venv/bin/python bench/bench_load.py --quick    # 500 services (0.25 M events), 3 runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
DLT_VENV = REPO / "bench" / ".venv-dlt"
DLT_REQUIREMENT = "dlt[postgres]==1.31.*"
END_DATE = "2026-11-29"
EVENTS_PER_SERVICE_DAY = 500


# ---------------------------------------------------------------- children (one measurement each)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_ours(config: dict[str, Any]) -> dict[str, Any]:
    """One run of the pipeline's real code path for one day (see the module docstring)."""
    import dataclasses

    from pipelines.ingest import load_events_window
    from pipelines.resources import ModelArtsResource
    from pipelines.warehouse.database import create_warehouse_engine
    from pipelines.warehouse.loader import DEFAULT_CHUNK_ROWS
    from pipelines.warehouse.services import upsert_services
    from pipelines.windows import TimeWindow

    timeline = _install_timeline() if config.get("timeline") else None
    modelarts = ModelArtsResource(**config["modelarts"])
    settings = modelarts.extract_settings()
    if config.get("buffered_pages"):
        settings = dataclasses.replace(settings, max_buffered_pages=config["buffered_pages"])
    engine = create_warehouse_engine(config["database_url"])
    started = time.perf_counter()
    listing = modelarts.build_client()
    services = list(listing.list_services())[: config["services"]]
    upsert_services(engine, services)
    report = load_events_window(
        modelarts.build_client(),
        engine,
        [s.service_id for s in services],
        TimeWindow(config["start_ms"], config["end_ms"]),
        settings,
        run_id="bench",
        partition_key=config["partition_key"],
        chunk_rows=config.get("chunk_rows") or DEFAULT_CHUNK_ROWS,
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": seconds,
        "fetched": report.counts["fetched"],
        "inserted": report.load.inserted,
        "already_present": report.load.already_present,
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_seconds": _cpu_seconds(),
    } | (timeline or {})


def _install_timeline() -> dict[str, float]:
    """Time the loader's steps in this process (the --timeline option): seconds the loading
    thread spent sending COPY data and in whole chunk moves, and the Postgres backend's CPU
    seconds and run-queue wait (Linux /proc) read just before the commit."""
    from pipelines.warehouse import loader

    figures = {"copy_seconds": 0.0, "chunk_seconds": 0.0}

    def timed(function: Callable[..., Any], key: str) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                figures[key] += time.perf_counter() - started

        return wrapper

    loader._copy_blocks = timed(loader._copy_blocks, "copy_seconds")
    flush = loader.WindowLoad._flush_chunk
    loader.WindowLoad._flush_chunk = timed(flush, "chunk_seconds")  # type: ignore[method-assign]
    commit = loader.WindowLoad.commit

    def commit_reading_backend(load: Any, *args: Any) -> Any:
        pid = load._conn.info.backend_pid
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        figures["pg_cpu_seconds"] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        schedstat = Path(f"/proc/{pid}/schedstat").read_text().split()
        figures["pg_runqueue_seconds"] = int(schedstat[1]) / 1e9
        return commit(load, *args)

    loader.WindowLoad.commit = commit_reading_backend  # type: ignore[method-assign,assignment]
    return figures


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _copy_out(database_url: str) -> list[bytes]:
    query = (
        "copy (select service_id, occur_time, event_type, event_info, load_batch_id "
        "from service_events) to stdout (format binary)"
    )
    with psycopg.connect(database_url) as conn, conn.cursor() as cur, cur.copy(query) as copy:
        return [bytes(block) for block in copy]


def child_limit(config: dict[str, Any]) -> dict[str, Any]:
    """COPY the loaded rows (binary, from memory) into an indexed and an unindexed empty table."""
    blocks = _copy_out(config["source_url"])
    out: dict[str, Any] = {}
    tables = {
        "indexed": "create table {} (like service_events including all)",
        "raw": "create table {} (like service_events including defaults including generated)",
    }
    with psycopg.connect(config["database_url"], autocommit=True) as conn:
        for label, ddl in tables.items():
            name = sql.Identifier(f"limit_{label}")
            conn.execute(sql.SQL(ddl).format(name))
            copy_in = sql.SQL(
                "copy {} (service_id, occur_time, event_type, event_info, load_batch_id) "
                "from stdin (format binary)"
            ).format(name)
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_in) as copy:
                for block in blocks:
                    copy.write(block)
            out[f"{label}_seconds"] = time.perf_counter() - started
            out[f"{label}_rows"] = conn.execute(
                sql.SQL("select count(*) from {}").format(name)
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(sql.SQL("drop table {}").format(name))
    return out


def child_stage(config: dict[str, Any]) -> dict[str, Any]:
    """WindowLoad alone, fed the loaded rows from memory, into an empty warehouse."""
    from pipelines.source.models import ServiceEvent
    from pipelines.warehouse.database import create_warehouse_engine
    from pipelines.warehouse.loader import WindowLoad
    from pipelines.windows import TimeWindow

    with psycopg.connect(config["source_url"]) as conn:
        events = [
            ServiceEvent(*row)
            for row in conn.execute(
                "select service_id, occur_time, event_type, event_info from service_events"
            )
        ]
    engine = create_warehouse_engine(config["database_url"])
    started = time.perf_counter()
    with WindowLoad(engine, TimeWindow(config["start_ms"], config["end_ms"])) as load:
        for i in range(0, len(events), 10_000):  # in blocks, as extraction hands them over
            load.add_encoded(load.encode_events(events[i : i + 10_000]))
        result = load.commit()
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "rows": len(events), "inserted": result.inserted}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ours": child_ours,
    "limit": child_limit,
    "stage": child_stage,
}


# ---------------------------------------------------------------- the parent


def _run_child(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _ours(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    return _run_child([sys.executable, __file__, "--child", kind, json.dumps(config)])


def ensure_dlt_venv() -> Path:
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {DLT_REQUIREMENT} into {DLT_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", DLT_REQUIREMENT],
            check=True,
        )
    return python


@contextmanager
def fresh_database(admin_url: str, migrate: bool = True) -> Iterator[str]:
    from pipelines.warehouse.database import create_warehouse_engine
    from pipelines.warehouse.embedded import ensure_database
    from pipelines.warehouse.migrations import apply_migrations

    name = f"bench_{uuid.uuid4().hex[:10]}"
    url = ensure_database(admin_url, name)
    if migrate:
        engine = create_warehouse_engine(url)
        apply_migrations(engine)
        engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def _iam_token(info: Any) -> str:
    """A token from the simulator's IAM, fetched as the pipeline fetches its own."""
    import requests

    from pipelines.source.auth import IAMCredentials, IAMPasswordAuth, Secret

    iam = IAMCredentials(info.url, info.username, Secret(info.password), info.domain, info.region)
    with requests.Session() as session:
        return IAMPasswordAuth(iam, session).token()


def dlt_config(
    info: Any, start_ms: int, end_ms: int, database_url: str, pipelines_dir: str
) -> dict[str, Any]:
    """The argument of bench/dlt_pipeline.py: the simulator, a token, the window, the target."""
    return {
        "url": info.url,
        "project_id": info.project_id,
        "token": _iam_token(info),
        "start_ms": start_ms,
        "end_ms": end_ms,
        "database_url": database_url,
        "pipelines_dir": pipelines_dir,
    }


def _fmt_rate(rows: float, seconds: list[float]) -> str:
    med = statistics.median(seconds)
    return f"{rows / med:>10,.0f}  ({rows / max(seconds):,.0f}-{rows / min(seconds):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("config", nargs="?")
    parser.add_argument("--quick", action="store_true", help="500 services (0.25 M events)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--only-ours", action="store_true", help="e2e first load + rerun only")
    parser.add_argument("--chunk-rows", type=int, help="WindowLoad chunk size (default: ours)")
    parser.add_argument("--buffered-pages", type=int, help="extraction page buffer")
    parser.add_argument("--workers", type=int, help="fetching threads (default: ours)")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also print where our loads spend their time (COPY, chunk moves, Postgres CPU)",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(args.config))))
        return

    from pipelines.simulator.process import running_simulator
    from pipelines.warehouse.embedded import scratch_server
    from pipelines.windows import day_start_ms

    services = 500 if args.quick else 2000
    small = 500
    dlt_python = None if args.skip_dlt else ensure_dlt_venv()
    sim_args = ["--services", str(services), "--days", "1", "--end-date", END_DATE]
    sim_args += ["--events-per-service-day", str(EVENTS_PER_SERVICE_DAY), "--seed", "11"]
    results: dict[str, list[dict[str, Any]]] = {}

    def record(name: str, value: dict[str, Any]) -> None:
        results.setdefault(name, []).append(value)
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in value.items()}
        print(f"  {name}: {json.dumps(shown)}", flush=True)

    with (
        scratch_server("bench-load-pg-") as admin_url,
        running_simulator(sim_args, timeout_s=120) as info,
    ):
        start_ms = day_start_ms(date.fromisoformat(info.start_date))
        end_ms = day_start_ms(date.fromisoformat(info.end_date))
        base = {
            "start_ms": start_ms,
            "end_ms": end_ms,
            "partition_key": info.start_date,
            "modelarts": {
                "endpoint": info.url,
                "project_id": info.project_id,
                "iam_endpoint": info.url,
                "username": info.username,
                "password": info.password,
                "domain": info.domain,
                "region": info.region,
                # no client-side rate limit (default 20 requests/s): dlt has none, and the
                # simulator never throttles
                "max_requests_per_s": 0,
            }
            | ({"workers": args.workers} if args.workers else {}),
        }
        print(f"simulator: {info.services} services, {info.events:,} events, day {info.start_date}")
        for run in range(1, args.runs + 1):
            print(f"run {run}/{args.runs}", flush=True)
            with fresh_database(admin_url) as ours_db:
                config = {**base, "database_url": ours_db, "services": services}
                config |= {"chunk_rows": args.chunk_rows, "buffered_pages": args.buffered_pages}
                config |= {"timeline": args.timeline}
                record("ours_first", _ours("ours", config))
                record("ours_rerun", _ours("ours", config))
                if args.only_ours:
                    continue
                with fresh_database(admin_url) as stage_db:
                    record(
                        "stage",
                        _ours("stage", {**base, "source_url": ours_db, "database_url": stage_db}),
                    )
                with fresh_database(admin_url) as limit_db:
                    record(
                        "limit", _ours("limit", {"source_url": ours_db, "database_url": limit_db})
                    )
            if not args.quick:
                with fresh_database(admin_url) as small_db:
                    config = {**base, "database_url": small_db, "services": small}
                    record("ours_small", _ours("ours", config))
            if dlt_python is not None:
                with (
                    fresh_database(admin_url, migrate=False) as dlt_db,
                    tempfile.TemporaryDirectory() as pipes,
                ):
                    config = dlt_config(info, start_ms, end_ms, dlt_db, pipes)
                    command = [
                        str(dlt_python),
                        str(REPO / "bench" / "dlt_pipeline.py"),
                        json.dumps(config),
                    ]
                    env = {**os.environ, "RUNTIME__LOG_LEVEL": "WARNING"}
                    record("dlt_first", _run_child(command, env))
                    record("dlt_rerun", _run_child(command, env))
    if not args.only_ours:
        print_table(results, info.events, services, small)


def print_table(
    results: dict[str, list[dict[str, Any]]], events: int, services: int, small: int
) -> None:
    def secs(name: str, key: str = "seconds") -> list[float]:
        return [r[key] for r in results.get(name, [])]

    med = statistics.median
    rows = results["ours_first"][0]["inserted"]
    limit_s, raw_s = secs("limit", "indexed_seconds"), secs("limit", "raw_seconds")
    print()
    print(
        f"| {events:,} events ({services} services x 1 day x {EVENTS_PER_SERVICE_DAY}), "
        f"medians of {len(limit_s)} runs (min-max) | rows/s | seconds | ratio |"
    )
    print("|---|---|---|---|")

    def line(label: str, seconds: list[float], ratio: str = "", n: float = rows) -> None:
        print(f"| {label} | {_fmt_rate(n, seconds)} | {med(seconds):.2f} | {ratio} |")

    line("COPY binary, unindexed table (raw limit)", raw_s)
    line("COPY binary, identically indexed table (index-bound limit)", limit_s)
    stage = secs("stage")
    line(
        "our load stage alone (WindowLoad from memory)",
        stage,
        f"{med(limit_s) / med(stage):.0%} of the index-bound limit",
    )
    first, rerun = secs("ours_first"), secs("ours_rerun")
    dlt_first, dlt_rerun = secs("dlt_first"), secs("dlt_rerun")
    line(
        "ours end-to-end, first load (load_events_window, HTTP)",
        first,
        f"{med(dlt_first) / med(first):.1f}x dlt" if dlt_first else "",
    )
    line(
        "ours end-to-end, rerun of the loaded day",
        rerun,
        f"{med(dlt_rerun) / med(rerun):.1f}x dlt" if dlt_rerun else "",
    )
    if dlt_first:
        line("dlt 1.31 rest_api -> postgres merge, first load", dlt_first)
        line("dlt 1.31 rest_api -> postgres merge, rerun", dlt_rerun)
    print()
    rss_big = [r["peak_rss_mb"] for r in results["ours_first"]]
    rss_small = [r["peak_rss_mb"] for r in results.get("ours_small", [])]
    print(
        f"peak RSS of our load process: {med(rss_big):.0f} MB at {rows:,} events"
        + (
            f", {med(rss_small):.0f} MB at {results['ours_small'][0]['inserted']:,} events"
            f" ({small} services)"
            if rss_small
            else ""
        )
        + f"; rerun {med([r['peak_rss_mb'] for r in results['ours_rerun']]):.0f} MB"
    )
    if dlt_first:
        print(
            f"peak RSS of dlt: {med([r['peak_rss_mb'] for r in results['dlt_first']]):.0f} MB;"
            f" dlt rows: {results['dlt_first'][0]['rows']:,}"
        )
    print(
        f"check: ours inserted {rows:,} then {results['ours_rerun'][0]['inserted']:,} "
        f"(already present {results['ours_rerun'][0]['already_present']:,})"
    )


if __name__ == "__main__":
    main()
