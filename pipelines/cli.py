"""`modelarts-etl`: run the main job, or open the Dagster UI, on real services or embedded ones.

With no MODELARTS_ENDPOINT the local simulator is started; with no DATABASE_URL the embedded
Postgres in PIPELINES_DATA_DIR (default ./.data) is used, unless DAGSTER_PG_URL says this is a
deployment (then both must be set). An operator mistake or an unreachable service ends the
command with one line on stderr and a non-zero exit; --debug shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from pipelines import settings

if TYPE_CHECKING:
    from dagster import ExecuteInProcessResult
    from sqlalchemy import Engine

    from pipelines.simulator.process import SimulatorInfo

log = logging.getLogger("modelarts-etl")


class CliError(Exception):
    """An operator mistake (exit 2) or an unreachable service (exit 1): one line on stderr."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    # SIGTERM unwinds like Ctrl+C, so the simulator and embedded Postgres are stopped too.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # INFO records meant for _DayProgress only
        handler.setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        # Everything an operator can get wrong is checked before anything starts.
        settings.validate()
        _check_days(args)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"modelarts-etl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        code = exc.code if isinstance(exc, CliError) else 2 if _is_config(exc) else 1
        hint = "" if isinstance(exc, CliError | settings.ConfigError) else " (--debug: traceback)"
        print(f"modelarts-etl {args.command}: error: {_one_line(exc)}{hint}", file=sys.stderr)
        return code


def _is_config(exc: BaseException) -> bool:
    """A ConfigError, also when Dagster wrapped it (a resource failing to start)."""
    while exc is not None:
        if isinstance(exc, settings.ConfigError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _one_line(exc: BaseException) -> str:
    """The innermost meaningful message of `exc` on one line, with no secret in it."""
    inner: BaseException = exc
    while isinstance(inner, settings.ConfigError) is False and inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner) or type(inner).__name__
    if not isinstance(inner, CliError | settings.ConfigError):
        text = f"{type(inner).__name__}: {text}"
    # Defence in depth (no message is built from a secret): secrets long enough to be real.
    secrets = [os.environ.get(settings.IAM_PASSWORD), os.environ.get(settings.MODELARTS_TOKEN)]
    for var in (settings.DATABASE_URL, settings.ANALYTICS_DATABASE_URL):
        secrets.append(urlsplit(os.environ.get(var, "")).password)
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    line = " ".join(text.split())
    return line if len(line) <= 400 else line[:397] + "..."


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="modelarts-etl", description=__doc__)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="materialize service events for a date range through Dagster")
    run.add_argument("--start", type=_day, help="first UTC day (YYYY-MM-DD)")
    run.add_argument("--end", type=_day, help="last UTC day, inclusive")
    dev = sub.add_parser("dev", help="start `dagster dev` (the UI) on the same configuration")
    dev.add_argument("--port", type=int, default=3000)
    status = sub.add_parser("status", help="per day: last load, events and services stored")
    status.add_argument("--start", type=_day, help="first UTC day (YYYY-MM-DD)")
    status.add_argument("--end", type=_day, help="last UTC day, inclusive")
    backfill = sub.add_parser(
        "backfill", help="load a range of days and rebuild everything downstream, as one run"
    )
    backfill.add_argument("--start", type=_day, required=True)
    backfill.add_argument("--end", type=_day, required=True)
    rerun = sub.add_parser("rerun", help="load one day again and rebuild everything downstream")
    rerun.add_argument("day", type=_day)
    migrate = sub.add_parser(
        "migrate", help="apply pending migrations (as the schema owner); --grants: the roles too"
    )
    migrate.add_argument(
        "--grants", action="store_true", help="also run sql/grants/*.sql (roles, privileges)"
    )
    verify = sub.add_parser("verify", help="compare a day's stored events with the API's counts")
    verify.add_argument("day", type=_day)
    db = sub.add_parser(
        "db",
        help="start the warehouse database and print its connection string; with the "
        "embedded Postgres, serve it on 127.0.0.1:PORT for BI tools until Ctrl+C",
    )
    db.add_argument("--port", type=int, default=5433, help="TCP port for BI tools (embedded)")
    db.add_argument("--print-only", action="store_true", help="print the URLs and exit")
    report = sub.add_parser(
        "report", help="write the deployment-health report: one self-contained HTML file"
    )
    report.add_argument("--start", type=_day, help="first UTC day (default: 14 days to --end)")
    report.add_argument("--end", type=_day, help="last UTC day, inclusive (default: yesterday)")
    report.add_argument("--out", type=Path, help="default: ./deployment-report-START-to-END.html")
    report.add_argument("--debug", action="store_true", help="show tracebacks")
    for p in (run, dev, status, backfill, rerun, verify, migrate, db):
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        group = p.add_argument_group("simulator (used when MODELARTS_ENDPOINT is unset)")
        group.add_argument("--sim-services", type=int, default=20)
        group.add_argument("--sim-days", type=int, default=7)
        group.add_argument("--sim-seed", type=int, default=42)
    return parser


def _check_days(args: argparse.Namespace) -> None:
    """The days a command names: in order, complete (UTC) and not before the first partition.

    Checked before the simulator or the database starts.
    """
    if args.command in ("rerun", "verify"):
        days = [args.day]
    elif args.command in ("run", "backfill", "status"):
        days = [d for d in (args.start, args.end) if d is not None]
        if args.start and args.end and args.end < args.start:
            raise CliError(f"--end {args.end} is before --start {args.start}")
    else:
        return
    if args.command == "status":
        return
    last = datetime.now(UTC).date() - timedelta(days=1)
    first = settings.partitions_start()
    for day in days:
        if day > last:
            raise CliError(f"{day} has not ended yet (UTC); the last complete day is {last}")
        if day < first:
            raise CliError(
                f"{day} is before the first partition {first} "
                f"(set {settings.PARTITIONS_START} to load earlier days)"
            )


@contextmanager
def _environment(args: argparse.Namespace, api: bool = True) -> Iterator[tuple[date, date] | None]:
    """Point the environment at the simulator / embedded Postgres where nothing is configured,
    and check that what is configured answers.

    Yields the simulator's date range when the simulator is used, else None.
    """
    sim_range: tuple[date, date] | None = None
    # DAGSTER_PG_URL means a deployment's instance: there, a missing variable is a mistake to
    # report, not a cue to start local stand-ins.
    deployment = bool(os.environ.get("DAGSTER_PG_URL"))
    configured = settings.configured()
    with ExitStack() as stack:
        if api and not configured.api:
            if deployment:
                raise CliError(
                    f"{settings.MODELARTS_ENDPOINT} is not set and DAGSTER_PG_URL says this is a "
                    "deployment: refusing to start the local simulator"
                )
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
        elif api:
            for var in (settings.MODELARTS_ENDPOINT, settings.IAM_ENDPOINT):
                if os.environ.get(var):
                    _check_reachable(var, os.environ[var])
        if not configured.database:
            if deployment:
                raise CliError(
                    f"{settings.DATABASE_URL} is not set and DAGSTER_PG_URL says this is a "
                    "deployment: refusing the embedded Postgres"
                )
            from pipelines.warehouse.embedded import start_embedded_postgres

            data_dir = Path(os.environ.get(settings.DATA_DIR, settings.DEFAULT_DATA_DIR))
            os.environ[settings.DATABASE_URL] = start_embedded_postgres(data_dir)
            os.environ[settings.EMBEDDED] = "1"
            print(f"warehouse: embedded Postgres, data in {(data_dir / 'pgdata').resolve()}")
        _check_database(os.environ[settings.DATABASE_URL])
        if args.command != "migrate":
            _migrate_announced()
        _ensure_dagster_home()
        if args.command in ("run", "backfill", "rerun"):
            _reclaim_dead_runs()
        yield sim_range


def _check_reachable(var: str, url: str) -> None:
    """A TCP connection to the host of `url` (no request, no credentials), else CliError.

    Skipped when the host is reached through a proxy (HTTPS_PROXY, ...): requests goes that way.
    """
    import urllib.request

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliError(f"cannot reach {host}:{port} ({var}): {reason}", code=1) from None


def _check_database(url: str) -> None:
    """Connect once (5 s at most), else CliError naming host:port/database, not the password."""
    import psycopg

    from pipelines.warehouse.database import describe_url, libpq_url

    try:
        psycopg.connect(libpq_url(url), connect_timeout=5).close()
    except psycopg.Error as exc:
        # libpq: 'connection to server at "h", port p failed: Connection refused\n\tIs the ...'
        text = str(exc).strip()
        reason = text.splitlines()[0].split(" failed: ")[-1] if text else type(exc).__name__
        raise CliError(
            f"cannot reach the warehouse at {describe_url(url)} ({settings.DATABASE_URL}): "
            f"{reason}",
            code=1,
        ) from None


def _migrate_announced() -> None:
    """Apply pending migrations before anything runs, and say which: the schema never changes
    unannounced (`migrate` is the explicit step)."""
    from pipelines.resources import migrated_engine
    from pipelines.warehouse.database import describe_url

    url = os.environ[settings.DATABASE_URL]
    _, applied = migrated_engine(url)  # the engine the command then uses (`_engine`)
    if applied:
        print(f"warehouse: applied migrations {', '.join(applied)} to {describe_url(url)}")


def _reclaim_dead_runs() -> None:
    """Free what runs of killed processes left in the Dagster instance (see dagster_runs.py)."""
    from dagster import DagsterInstance

    from pipelines.dagster_runs import install_pool_wait_guard, reclaim_dead_runs

    install_pool_wait_guard()
    reclaimed = reclaim_dead_runs(DagsterInstance.get())
    if reclaimed.failed_runs:
        print(
            f"dagster: {len(reclaimed.failed_runs)} run(s) of dead processes marked failed: "
            + ", ".join(reclaimed.failed_runs)
        )


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


_HEADER = (
    f"{'day':<12}{'services':>9}{'fetched':>10}{'inserted':>10}"
    f"{'already':>10}{'quarantined':>13}{'seconds':>9}{'attempts':>10}"
)


def _day_row(key: str, meta: dict[str, Any], attempts: object = "-") -> str:
    return (
        f"{key:<12}{meta['services']:>9}{meta['fetched']:>10}{meta['inserted']:>10}"
        f"{meta['already_present']:>10}{meta['quarantined']:>13}"
        f"{meta['seconds']:>9.2f}{attempts!s:>10}"
    )


def _run(args: argparse.Namespace) -> int:
    from dagster import AssetSelection, DagsterInstance, materialize

    from pipelines.assets.deployments import deployment_marts
    from pipelines.assets.events import service_events, services
    from pipelines.dagster_runs import process_tags
    from pipelines.definitions import build_resources

    with _environment(args) as sim_range:
        default_start, default_end = _default_range(sim_range)
        # the simulator's history may begin before the first partition
        default_start = max(default_start, settings.partitions_start())
        start = args.start or default_start
        end = args.end or default_end
        if end < start:
            raise CliError(f"--end {end} is before --start {start}")
        assets = [services, service_events, deployment_marts]
        # each day: its events, then everything downstream of them (the deployment marts)
        per_day = AssetSelection.assets("service_events").downstream()
        resources = build_resources()
        instance = DagsterInstance.get()
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        tags = {**process_tags(), "pipelines/trigger": "run"}
        listing = materialize(
            assets,
            selection=["services"],
            instance=instance,
            resources=resources,
            run_config=quiet,
            tags=tags,
            raise_on_error=False,
        )
        if not listing.success:
            raise CliError(
                f"listing the services failed: {_failure(listing)} (run {listing.run_id})", code=1
            )
        print(_HEADER)
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
                tags=tags,
                raise_on_error=False,
            )
            if result.success:
                meta = _metadata(result, "service_events", "service_events")
                marts = _metadata(result, "deployment_marts", "deployment_attempts")
                print(_day_row(key, meta, marts.get("attempts_rebuilt", "-")), flush=True)
            else:
                failed += 1
                print(f"{key:<12}FAILED: {_failure(result)} (run {result.run_id})", flush=True)
            day += timedelta(days=1)
        print(f"runs recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
        return 1 if failed else 0


def _failure(result: ExecuteInProcessResult) -> str:
    """Why a run failed, on one line: its first step failure, else the run's own error."""
    errors: list[Any] = [
        event.step_failure_data.error
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data is not None
    ] + [
        getattr(event.event_specific_data, "error", None)
        for event in result.all_events
        if event.is_run_failure
    ]
    for error in filter(None, errors):
        # Dagster wraps a step's exception ("Error occurred while executing ..."): its cause
        while error.cause is not None and "Error occurred" in (error.message or ""):
            error = error.cause
        return _one_line(RuntimeError(error.message.strip())).removeprefix("RuntimeError: ")
    return "see the Dagster UI"


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
    if any(r.last_load_status == "stale" for r in rows):
        print("stale: a load left `running` by a process that died; the next load of the day")
        print("takes it over (`modelarts-etl rerun DAY`, or the nightly run)")
    return 0


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


class _DayProgress(logging.Handler):
    """Prints a row per day as its load commits (ingest.py logs a `window_report`)."""

    def emit(self, record: logging.LogRecord) -> None:
        report = getattr(record, "window_report", None)
        if report is None:
            return
        day = datetime.fromtimestamp(report.window.start_ms / 1000, UTC).date().isoformat()
        print(_day_row(day, report.as_metadata()), flush=True)


@contextmanager
def _day_progress() -> Iterator[None]:
    ingest_log = logging.getLogger("pipelines.ingest")
    handler = _DayProgress(logging.INFO)
    level = ingest_log.level
    ingest_log.addHandler(handler)
    ingest_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        ingest_log.removeHandler(handler)
        ingest_log.setLevel(level)


def _backfill(args: argparse.Namespace) -> int:
    """One run of the nightly job over a range: events, then everything downstream."""
    from dagster import DagsterInstance

    from pipelines.dagster_runs import process_tags
    from pipelines.definitions import build_definitions

    first, last = (args.day, args.day) if args.command == "rerun" else (args.start, args.end)
    with _environment(args):
        job = build_definitions().resolve_job_def("nightly")
        print(_HEADER)
        with _day_progress():
            result = job.execute_in_process(
                instance=DagsterInstance.get(),
                tags={
                    **process_tags(),
                    "dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat(),
                    "pipelines/trigger": args.command,
                },
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                raise_on_error=False,
            )
        if result.success:
            marts = _metadata(result, "deployment_marts", "deployment_attempts")
            print(
                f"{args.command} {first}..{last}: run {result.run_id} succeeded; deployment "
                f"marts rebuilt ({marts.get('attempts_rebuilt', '-')} attempts)"
            )
            return 0
        print(f"{args.command} {first}..{last}: run {result.run_id} FAILED: {_failure(result)}")
        return 1


def _migrate(args: argparse.Namespace) -> int:
    import psycopg

    from pipelines.warehouse.database import create_warehouse_engine, libpq_url
    from pipelines.warehouse.migrations import apply_migrations
    from pipelines.warehouse.sql_files import sql_root

    with _environment(args, api=False):
        engine = create_warehouse_engine(os.environ[settings.DATABASE_URL])
        applied = apply_migrations(engine)
        print(f"migrations applied: {', '.join(applied) or 'none pending'}")
        if args.grants:
            for script in sorted((sql_root() / "grants").glob("*.sql")):
                # psycopg directly: with no parameters, `%` in the scripts is not a placeholder
                url = libpq_url(os.environ[settings.DATABASE_URL])
                with psycopg.connect(url, autocommit=True) as conn:
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


def _db(args: argparse.Namespace) -> int:
    """Print the warehouse's connection string; serve the embedded one over TCP for BI tools."""
    from pipelines.warehouse.database import describe_url
    from pipelines.warehouse.relay import relay_to_unix_socket, unix_socket_path

    embedded = not settings.configured().database
    with _environment(args, api=False):
        url = os.environ[settings.DATABASE_URL]
        if not embedded:
            print(f"warehouse: {describe_url(url)} (DATABASE_URL; connect with its credentials)")
            return 0
        print(f"psql / local clients: psql '{url}'")
        socket_path = unix_socket_path(url)
        tcp_url = f"postgresql://postgres@127.0.0.1:{args.port}/{describe_url(url).split('/')[-1]}"
        if args.print_only:
            print(f"BI tools: run `modelarts-etl db --port {args.port}` to serve {tcp_url}")
            return 0
        try:
            listener = socket.create_server(("127.0.0.1", args.port))
        except OSError as exc:
            raise CliError(f"port {args.port} on 127.0.0.1: {exc.strerror}; use --port N") from None
        print(f"BI tools (127.0.0.1 only, user postgres, no password): {tcp_url}")
        print("serving until Ctrl+C; the embedded Postgres stops when the last user stops")
        with listener, contextlib.suppress(KeyboardInterrupt):
            relay_to_unix_socket(listener, socket_path)
    return 0


def _report(args: argparse.Namespace) -> int:
    from pipelines.report.command import report_command, report_range

    first, last = report_range(args.start, args.end)
    if last < first:
        raise CliError(f"--end {last} is before --start {first}")
    with _environment(args, api=False):
        from pipelines.resources import warehouse_engine

        # the marts' role when there is one: a least-privilege loader may not read analytics
        url = os.environ.get(settings.ANALYTICS_DATABASE_URL) or os.environ[settings.DATABASE_URL]
        engine = warehouse_engine(url, Path(settings.DEFAULT_DATA_DIR))
        print("\n".join(report_command(engine, first, last, args.out)))
    return 0


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


COMMANDS = {
    "run": _run,
    "dev": _dev,
    "status": _status,
    "backfill": _backfill,
    "rerun": _backfill,
    "verify": _verify,
    "migrate": _migrate,
    "db": _db,
    "report": _report,
}


if __name__ == "__main__":
    sys.exit(main())
