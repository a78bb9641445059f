"""Connections to the warehouse: a configured Postgres, or the embedded one."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from pipelines import settings
from pipelines.warehouse.embedded import start_embedded_postgres
from pipelines.warehouse.migrations import apply_migrations

log = logging.getLogger(__name__)


def sqlalchemy_url(database_url: str) -> str:
    """Turn a `postgresql://` (or `postgres://`) URL into one for SQLAlchemy on psycopg 3."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.get_backend_name() != "postgresql":
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(database_url: str) -> str:
    """The same URL as libpq (psycopg.connect) reads it: `postgresql+psycopg://` -> `postgresql://`."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The configured URL; the embedded server's only when PIPELINES_EMBEDDED=1 chooses it.

    Fails closed: a deployment that lost its DATABASE_URL must not quietly load into a fresh
    Postgres on the run worker's disk.
    """
    if database_url:
        return database_url
    if os.environ.get(settings.EMBEDDED) != "1":
        raise settings.ConfigError(
            f"{settings.DATABASE_URL} is not set; set it, or set {settings.EMBEDDED}=1 to use "
            f"the embedded Postgres in {settings.DATA_DIR} (`modelarts-etl` does that itself)"
        )
    return start_embedded_postgres(data_dir)


def describe_url(database_url: str) -> str:
    """host:port/database of a URL, for messages: never the user's password."""
    try:
        url = make_url(database_url.replace("postgres://", "postgresql://", 1))
        host = url.host or url.query.get("host") or "localhost"
        if isinstance(host, tuple):
            host = host[0]
        where = f"{host}:{url.port}" if url.port else str(host)
        return f"{where}/{url.database or ''}"
    except ValueError:  # e.g. a libpq multi-host URL
        return "the configured database"


def create_warehouse_engine(database_url: str, pool_size: int = 5) -> Engine:
    """A SQLAlchemy 2 engine on psycopg 3 for the warehouse."""
    return create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"application_name": "modelarts-events-pipeline"},
    )


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def warehouse_engine(database_url: str | None, data_dir: Path) -> Engine:
    """One migrated engine per database per process.

    Pending migrations are applied (a least-privilege role gets a clear error instead) and
    logged as a warning naming the database: `modelarts-etl migrate` is the explicit step.
    """
    url = resolve_database_url(database_url, data_dir)
    engine, applied = migrated_engine(url)
    if applied:
        log.warning(
            "warehouse %s: applied pending migrations %s", describe_url(url), ", ".join(applied)
        )
    return engine


def migrated_engine(url: str) -> tuple[Engine, list[str]]:
    """This process's engine of `url`, and the migrations applied in making it (none once it
    exists)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine, []
        engine = create_warehouse_engine(url)
        applied = apply_migrations(engine)
        _engines[url] = engine
        return engine, applied
