"""What a command runs against: the configured API and warehouse, checked before anything
starts, or local stand-ins where nothing is configured; the schema current (read-only commands)
or migrated in one announced step (the others)."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipelines import settings
from pipelines.cli.arguments import READ_ONLY_COMMANDS, RUN_COMMANDS
from pipelines.cli.errors import CliError

if TYPE_CHECKING:
    from sqlalchemy import Engine


def check_credentials(args: argparse.Namespace) -> None:
    """A configured API's project and credentials, before anything starts (see connect.py)."""
    if args.command in ("run", "backfill", "rerun", "verify", "dev") and settings.configured().api:
        from pipelines.source.connect import check_environment

        check_environment(lambda url: check_reachable(settings.MODELARTS_ENDPOINT, url))


@contextmanager
def environment(args: argparse.Namespace, api: bool = True) -> Iterator[tuple[date, date] | None]:
    """Point the environment at the simulator / embedded Postgres where nothing is configured,
    and check that what is configured answers.

    Yields the simulator's date range when the simulator is used, else None.
    """
    # DAGSTER_PG_URL means a deployment's instance: there, a missing variable is a mistake to
    # report, not a cue to start local stand-ins.
    deployment = bool(os.environ.get("DAGSTER_PG_URL"))
    configured = settings.configured()
    simulator_args = None
    if api and not configured.api:
        if deployment:
            raise CliError(
                f"{settings.MODELARTS_ENDPOINT} is not set and DAGSTER_PG_URL says this is a "
                "deployment: refusing to start the local simulator"
            )
        simulator_args = ["--services", str(args.sim_services), "--days", str(args.sim_days)]
        simulator_args += ["--seed", str(args.sim_seed), "--api", getattr(args, "sim_api", "mixed")]
    elif api:
        for var in (settings.MODELARTS_ENDPOINT, settings.IAM_ENDPOINT):
            if os.environ.get(var):
                check_reachable(var, os.environ[var])
    data_dir = None
    if not configured.database:
        if deployment:
            raise CliError(
                f"{settings.DATABASE_URL} is not set and DAGSTER_PG_URL says this is a "
                "deployment: refusing the embedded Postgres"
            )
        data_dir = Path(os.environ.get(settings.DATA_DIR, settings.DEFAULT_DATA_DIR))
    if simulator_args is None and data_dir is None:
        _checked(args)
        yield None
        return
    from pipelines.simulator.process import local_stand_ins

    with local_stand_ins(simulator_args, data_dir) as stand_ins:
        if stand_ins.simulator is not None:
            sim = stand_ins.simulator
            generations = (
                f"{sim.services} old-version (v1) and {sim.v2_services} new-version (v2) services"
                if sim.v2_services
                else f"{sim.services} services"
            )
            print(f"simulator: {generations}, {sim.events} events at {sim.url}")
        if data_dir is not None:
            print(f"warehouse: embedded Postgres, data in {(data_dir / 'pgdata').resolve()}")
        _checked(args)
        yield stand_ins.days


def _checked(args: argparse.Namespace) -> None:
    """The warehouse answers, its schema is as the command needs it, and a run's Dagster
    instance is ready."""
    check_database(os.environ[settings.DATABASE_URL])
    if args.command in READ_ONLY_COMMANDS:
        _check_schema_current(args.command)
    elif args.command != "migrate":
        _migrate_announced()
    from pipelines.cli.runs import ensure_dagster_home, reclaim_killed_runs

    ensure_dagster_home()
    if args.command in RUN_COMMANDS:
        reclaim_killed_runs()


def check_reachable(var: str, url: str) -> None:
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


def check_database(url: str) -> None:
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


def _check_schema_current(command: str) -> None:
    """A read-only command on a warehouse with pending migrations: `db` says so and goes on (it
    only connects), `status` and `verify` stop with one line (exit 1) naming what applies them."""
    from sqlalchemy.exc import ProgrammingError

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
    except ProgrammingError as exc:
        # `db` only prints where the warehouse is: a BI login (analytics_reader), which may
        # not read schema_migrations, uses it too
        if command == "db" and getattr(exc.orig, "sqlstate", None) == "42501":
            return
        raise
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


def read_engine() -> Engine:
    """The warehouse for a read-only command: no migration (`environment` checked the schema)."""
    from pipelines.warehouse.database import create_warehouse_engine

    return create_warehouse_engine(os.environ[settings.DATABASE_URL], pool_size=2)
