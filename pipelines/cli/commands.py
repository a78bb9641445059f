"""What each command does, given its parsed arguments; its exit code."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipelines import settings
from pipelines.cli.environment import environment, read_engine
from pipelines.cli.errors import CliError
from pipelines.cli.runs import run_days
from pipelines.cli.tables import print_status, print_verify
from pipelines.reclassify import print_rule_version


def run(args: argparse.Namespace) -> int:
    """`run`: the nightly job over --start..--end (default: the simulator's days, or the last 7)."""
    with environment(args) as sim_range:
        default_start, default_end = _default_range(sim_range)
        # the simulator's history may begin before the first partition
        default_start = max(default_start, settings.partitions_start())
        start = args.start or default_start
        end = args.end or default_end
        if end < start:
            raise CliError(f"--end {end} is before --start {start}")
        return run_days(args.command, start, end)


def backfill(args: argparse.Namespace) -> int:
    """`backfill` over --start..--end, `rerun` of one day."""
    first, last = (args.day, args.day) if args.command == "rerun" else (args.start, args.end)
    with environment(args):
        return run_days(args.command, first, last)


def _default_range(sim_range: tuple[date, date] | None) -> tuple[date, date]:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return sim_range or (yesterday - timedelta(days=6), yesterday)


def status(args: argparse.Namespace) -> int:
    from pipelines.operate import partition_status

    with environment(args, api=False):
        first, last = _default_range(None)
        rows = partition_status(read_engine(), args.start or first, args.end or last)
    from pipelines.source.connect import describe_environment

    print(describe_environment())
    print_status(rows)
    return 0


def migrate(args: argparse.Namespace) -> int:
    import psycopg

    from pipelines.warehouse.database import create_warehouse_engine, libpq_url
    from pipelines.warehouse.migrations import apply_migrations
    from pipelines.warehouse.sql_files import sql_root

    with environment(args, api=False):
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


def verify(args: argparse.Namespace) -> int:
    from pipelines.assets.partitions import day_windows
    from pipelines.definitions import build_resources
    from pipelines.operate import verify_window

    start = datetime(args.day.year, args.day.month, args.day.day, tzinfo=UTC)
    _, window = next(day_windows(start, start + timedelta(days=1)))
    with environment(args):
        # Resolve the EnvVar-bound fields the way a run does.
        client = build_resources()["modelarts"].process_config_and_initialize().build_client()
        service_ids = [s.service_id for s in client.list_services()]
        checks = verify_window(client, read_engine(), service_ids, window)
    return 1 if print_verify(args.day, checks) else 0


def db(args: argparse.Namespace) -> int:
    """Print the warehouse's connection string; serve the embedded one over TCP for BI tools."""
    from pipelines.warehouse.database import describe_url
    from pipelines.warehouse.relay import relay_to_unix_socket, unix_socket_path

    embedded = not settings.configured().database
    with environment(args, api=False):
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


def report(args: argparse.Namespace) -> int:
    from pipelines.report.command import report_command, report_range

    first, last = report_range(args.start, args.end)
    if last < first:
        raise CliError(f"--end {last} is before --start {first}")
    with environment(args, api=False):
        from pipelines.warehouse.database import warehouse_engine

        # the marts' role when there is one: a least-privilege loader may not read analytics
        url = os.environ.get(settings.ANALYTICS_DATABASE_URL) or os.environ[settings.DATABASE_URL]
        engine = warehouse_engine(url, Path(settings.DEFAULT_DATA_DIR))
        print("\n".join(report_command(engine, first, last, args.out)))
    return 0
