"""The command line: its commands, their arguments, and the checks of what the arguments name
(days in order, complete, not before the first partition) made before anything starts."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from pipelines import settings
from pipelines.cli.errors import CliError

# Commands that execute the nightly job in this process.
RUN_COMMANDS = ("run", "backfill", "rerun")
# Commands that only read the warehouse: they never change its schema, not even to migrate it.
READ_ONLY_COMMANDS = ("status", "verify", "db", "report")


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
_LAST = "last UTC day, inclusive"
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


def _range(
    parser: argparse.ArgumentParser, start_help: str, end_help: str, required: bool = False
) -> None:
    """--start and --end, UTC days."""
    parser.add_argument("--start", type=_day, required=required, metavar=_DAY, help=start_help)
    parser.add_argument("--end", type=_day, required=required, metavar=_DAY, help=end_help)


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="modelarts-etl",
        description=description,
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
    _range(run, "first UTC day (default: above)", "last UTC day, inclusive (default: above)")
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
    _range(status, "first UTC day (default: 7 days ago)", f"{_LAST} (default: yesterday)")
    backfill = command(
        "backfill",
        "Load a range of UTC days and rebuild everything downstream, as one run of the nightly job",
        _RUN_ROWS,
    )
    _range(backfill, "first UTC day", _LAST, required=True)
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
    _range(reclassify, "first UTC day", _LAST, required=True)
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
    _range(report, "first UTC day (default: 14 days to --end)", f"{_LAST} (default: yesterday)")
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
        group.add_argument(
            "--sim-api",
            choices=("v1", "v2", "mixed"),
            default="mixed",
            help="the services' API generation: old-version (v1), new-version (v2), or half "
            "each (default: mixed)",
        )
    return parser


def demo_partitions(args: argparse.Namespace) -> None:
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


def check_days(args: argparse.Namespace) -> None:
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
