"""`modelarts-etl`: run the main job, or open the Dagster UI, on real services or embedded ones.

With no MODELARTS_ENDPOINT the local simulator is started; with no DATABASE_URL the embedded
Postgres in PIPELINES_DATA_DIR (default ./.data) is used.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import settings

if TYPE_CHECKING:
    from dagster import ExecuteInProcessResult
    from sqlalchemy import Engine

    from pipelines.simulator.process import SimulatorInfo

log = logging.getLogger("modelarts-etl")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl+C, so the simulator and embedded Postgres are stopped too.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.command == "run":
        return _run(args)
    if args.command == "dev":
        return _dev(args)
    if args.command == "status":
        return _status(args)
    if args.command in ("backfill", "rerun"):
        return _backfill(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "migrate":
        return _migrate(args)
    parser.print_help()
    return 2


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelarts-etl", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="materialize service events for a date range through Dagster")
    run.add_argument("--start", type=date.fromisoformat, help="first UTC day (YYYY-MM-DD)")
    run.add_argument("--end", type=date.fromisoformat, help="last UTC day, inclusive")
    dev = sub.add_parser("dev", help="start `dagster dev` (the UI) on the same configuration")
    dev.add_argument("--port", type=int, default=3000)
    status = sub.add_parser("status", help="per day: last load, events and services stored")
    status.add_argument("--start", type=date.fromisoformat, help="first UTC day (YYYY-MM-DD)")
    status.add_argument("--end", type=date.fromisoformat, help="last UTC day, inclusive")
    backfill = sub.add_parser(
        "backfill", help="load a range of days and rebuild everything downstream, as one run"
    )
    backfill.add_argument("--start", type=date.fromisoformat, required=True)
    backfill.add_argument("--end", type=date.fromisoformat, required=True)
    rerun = sub.add_parser("rerun", help="load one day again and rebuild everything downstream")
    rerun.add_argument("day", type=date.fromisoformat)
    migrate = sub.add_parser(
        "migrate", help="apply pending migrations (as the schema owner); --grants: the roles too"
    )
    migrate.add_argument(
        "--grants", action="store_true", help="also run sql/grants/*.sql (roles, privileges)"
    )
    verify = sub.add_parser("verify", help="compare a day's stored events with the API's counts")
    verify.add_argument("day", type=date.fromisoformat)
    for p in (run, dev, status, backfill, rerun, verify, migrate):
        group = p.add_argument_group("simulator (used when MODELARTS_ENDPOINT is unset)")
        group.add_argument("--sim-services", type=int, default=20)
        group.add_argument("--sim-days", type=int, default=7)
        group.add_argument("--sim-seed", type=int, default=42)
    return parser


@contextmanager
def _environment(args: argparse.Namespace, api: bool = True) -> Iterator[tuple[date, date] | None]:
    """Point the environment at the simulator / embedded Postgres where nothing is configured.

    Yields the simulator's date range when the simulator is used, else None.
    """
    sim_range: tuple[date, date] | None = None
    with ExitStack() as stack:
        if api and not settings.configured().api:
            from pipelines.simulator.process import running_simulator

            info = stack.enter_context(
                running_simulator(
                    [
                        "--services",
                        str(args.sim_services),
                        "--days",
                        str(args.sim_days),
                        "--seed",
                        str(args.sim_seed),
                    ]
                )
            )
            os.environ.update(simulator_environment(info))
            os.environ.pop(settings.MODELARTS_TOKEN, None)
            sim_range = (
                date.fromisoformat(info.start_date),
                date.fromisoformat(info.end_date) - timedelta(days=1),
            )
            print(f"simulator: {info.services} services, {info.events} events at {info.url}")
        if not settings.configured().database:
            from pipelines.warehouse.embedded import start_embedded_postgres

            data_dir = Path(os.environ.get(settings.DATA_DIR, settings.DEFAULT_DATA_DIR))
            os.environ[settings.DATABASE_URL] = start_embedded_postgres(data_dir)
            print(f"warehouse: embedded Postgres, data in {(data_dir / 'pgdata').resolve()}")
        _ensure_dagster_home()
        yield sim_range


def simulator_environment(info: SimulatorInfo) -> dict[str, str]:
    """The variables that point the pipeline at a running simulator, with IAM password auth."""
    return {
        settings.MODELARTS_ENDPOINT: info.url,
        settings.MODELARTS_PROJECT_ID: info.project_id,
        settings.IAM_ENDPOINT: info.url,
        settings.IAM_USERNAME: info.username,
        settings.IAM_PASSWORD: info.password,
        settings.IAM_DOMAIN: info.domain,
        settings.IAM_REGION: info.region,
    }


def _ensure_dagster_home() -> None:
    """DAGSTER_HOME when unset: deploy/ (Postgres storage) when DAGSTER_PG_URL says so, the
    repository root (SQLite under .data/) when run from a checkout, else a folder in the data
    directory."""
    if os.environ.get("DAGSTER_HOME"):
        return
    if os.environ.get("DAGSTER_PG_URL") and Path("deploy/dagster.yaml").is_file():
        home = Path("deploy")
    elif Path("dagster.yaml").is_file():
        home = Path.cwd()
    else:
        home = Path(os.environ.get(settings.DATA_DIR, settings.DEFAULT_DATA_DIR)) / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance_yaml = home / "dagster.yaml"
        if not instance_yaml.exists():
            instance_yaml.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home.resolve())


def _run(args: argparse.Namespace) -> int:
    from dagster import AssetSelection, DagsterInstance, materialize

    from pipelines.assets.deployments import deployment_marts
    from pipelines.assets.events import service_events, services
    from pipelines.definitions import build_resources

    with _environment(args) as sim_range:
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        default_start, default_end = sim_range or (yesterday - timedelta(days=6), yesterday)
        start = args.start or default_start
        end = args.end or default_end
        if end < start:
            print(f"--end {end} is before --start {start}", file=sys.stderr)
            return 2
        assets = [services, service_events, deployment_marts]
        # each day: its events, then everything downstream of them (the deployment marts)
        per_day = AssetSelection.assets("service_events").downstream()
        resources = build_resources()
        instance = DagsterInstance.get()
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        listing = materialize(
            assets,
            selection=["services"],
            instance=instance,
            resources=resources,
            run_config=quiet,
            raise_on_error=False,
        )
        if not listing.success:
            print("materializing `services` failed; see the Dagster run log", file=sys.stderr)
            return 1
        print(
            f"{'day':<12}{'services':>9}{'fetched':>10}{'inserted':>10}"
            f"{'already':>10}{'quarantined':>13}{'seconds':>9}{'attempts':>10}"
        )
        failed = 0
        day = start
        while day <= end:
            key = day.isoformat()
            result = materialize(
                assets,
                selection=per_day,
                partition_key=key,
                instance=instance,
                resources=resources,
                run_config=quiet,
                raise_on_error=False,
            )
            if result.success:
                meta = _metadata(result, "service_events", "service_events")
                marts = _metadata(result, "deployment_marts", "deployment_attempts")
                print(
                    f"{key:<12}{meta['services']:>9}{meta['fetched']:>10}{meta['inserted']:>10}"
                    f"{meta['already_present']:>10}{meta['quarantined']:>13}"
                    f"{meta['seconds']:>9.2f}{marts.get('attempts_rebuilt', '-'):>10}"
                )
            else:
                failed += 1
                print(f"{key:<12}FAILED (run {result.run_id}; see the Dagster UI)")
            day += timedelta(days=1)
        print(f"runs recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
        return 1 if failed else 0


def _metadata(result: ExecuteInProcessResult, node: str, asset: str) -> dict[str, Any]:
    """The metadata values of `asset`'s materialization by step `node` (empty if none)."""
    for materialization in result.asset_materializations_for_node(node):
        if materialization.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in materialization.metadata.items()}
    return {}


def _default_range(sim_range: tuple[date, date] | None) -> tuple[date, date]:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return sim_range or (yesterday - timedelta(days=6), yesterday)


def _engine() -> Engine:
    from pipelines.resources import warehouse_engine

    return warehouse_engine(os.environ[settings.DATABASE_URL], Path(settings.DEFAULT_DATA_DIR))


def _status(args: argparse.Namespace) -> int:
    from pipelines.operate import partition_status

    with _environment(args, api=False):
        first, last = _default_range(None)
        rows = partition_status(_engine(), args.start or first, args.end or last)
    print(
        f"{'day':<12}{'last load':<11}{'finished (UTC)':<21}{'fetched':>9}{'inserted':>10}"
        f"{'quarantined':>13}{'services':>10}{'events':>9}"
    )
    for r in rows:
        finished = (
            r.last_load_finished_at.strftime("%Y-%m-%d %H:%M:%S")
            if r.last_load_finished_at
            else "-"
        )
        print(
            f"{r.day.isoformat():<12}{r.last_load_status or 'never':<11}{finished:<21}"
            f"{_n(r.last_fetched):>9}{_n(r.last_inserted):>10}{_n(r.last_quarantined):>13}"
            f"{r.services:>10}{r.events:>9}"
        )
    return 0


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _backfill(args: argparse.Namespace) -> int:
    """One run of the nightly job over a range: events, then everything downstream."""
    from dagster import DagsterInstance

    from pipelines.definitions import build_definitions

    first, last = (args.day, args.day) if args.command == "rerun" else (args.start, args.end)
    if last < first:
        print(f"--end {last} is before --start {first}", file=sys.stderr)
        return 2
    with _environment(args):
        job = build_definitions().resolve_job_def("nightly")
        result = job.execute_in_process(
            instance=DagsterInstance.get(),
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
                "pipelines/trigger": args.command,
            },
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
        )
        print(
            f"{args.command} {first}..{last}: run {result.run_id} "
            f"{'succeeded' if result.success else 'FAILED (see the Dagster UI)'}"
        )
        return 0 if result.success else 1


def _migrate(args: argparse.Namespace) -> int:
    import psycopg

    from pipelines.warehouse.database import create_warehouse_engine
    from pipelines.warehouse.migrations import apply_migrations
    from pipelines.warehouse.sql_files import sql_root

    with _environment(args, api=False):
        engine = create_warehouse_engine(os.environ[settings.DATABASE_URL])
        applied = apply_migrations(engine)
        print(f"migrations applied: {', '.join(applied) or 'none pending'}")
        if args.grants:
            for script in sorted((sql_root() / "grants").glob("*.sql")):
                # psycopg directly: with no parameters, `%` in the scripts is not a placeholder
                with psycopg.connect(os.environ[settings.DATABASE_URL], autocommit=True) as conn:
                    conn.execute(script.read_text(encoding="utf-8"))
                print(f"applied {script.name}")
        engine.dispose()
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pipelines.assets.partitions import day_windows
    from pipelines.definitions import build_resources
    from pipelines.operate import verify_window

    start = datetime(args.day.year, args.day.month, args.day.day, tzinfo=UTC)
    _, window = next(day_windows(start, start + timedelta(days=1)))
    with _environment(args):
        # Resolve the EnvVar-bound fields the way a run does.
        client = build_resources()["modelarts"].process_config_and_initialize().build_client()
        service_ids = [s.service_id for s in client.list_services()]
        checks = verify_window(client, _engine(), service_ids, window)
    print(f"{'service_id':<40}{'api total':>10}{'stored':>8}  result")
    for c in checks:
        verdict = "ok" if c.matches else ("gone from API" if c.api_total is None else "DIFFERS")
        print(f"{c.service_id:<40}{_n(c.api_total):>10}{c.stored:>8}  {verdict}")
    differing = sum(not c.matches for c in checks)
    print(f"{len(checks)} services, {differing} differ")
    return 1 if differing else 0


def _dev(args: argparse.Namespace) -> int:
    with _environment(args):
        print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl+C to stop)")
        command = [
            sys.executable, "-m", "dagster", "dev", "-m", "pipelines.definitions",
            "-h", "127.0.0.1", "-p", str(args.port),
        ]  # fmt: skip
        # Its own process group: on shutdown the webserver, daemon and code servers all get the
        # signal, not just `dagster dev` (which would leave them running).
        child = subprocess.Popen(command, start_new_session=True, preexec_fn=_default_sigint)
        try:
            return child.wait()
        except KeyboardInterrupt:
            _stop_group(child)
            return 0


def _default_sigint() -> None:
    # A shell that starts us in the background ignores SIGINT; dagster dev needs it to stop.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_group(child: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; make sure none of its group outlives it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        return


if __name__ == "__main__":
    sys.exit(main())
