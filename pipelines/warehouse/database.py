"""Connections to the warehouse: a configured Postgres, or the embedded one."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from pipelines import settings
from pipelines.warehouse.embedded import start_embedded_postgres
from pipelines.warehouse.migrations import (
    MigrationPendingError,
    apply_migrations,
    pending_migrations,
)


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
    """This process's engine of the warehouse, its schema checked when first made.

    Nothing is migrated here: a pending migration raises MigrationPendingError, one line that
    names `modelarts-etl migrate` (the explicit step, as the schema owner).
    """
    url = resolve_database_url(database_url, data_dir)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_warehouse_engine(url)
            try:
                pending = pending_migrations(engine)
            except BaseException:
                engine.dispose()
                raise
            if pending:
                engine.dispose()
                raise MigrationPendingError(
                    f"the warehouse at {describe_url(url)} has {describe_pending(pending)}: "
                    "run `modelarts-etl migrate` as the schema owner"
                )
            _engines[url] = engine
        return engine


def migrate_warehouse(url: str, announce: Callable[[list[str]], None]) -> list[str]:
    """Apply the pending migrations of the warehouse at `url`, first passing their versions to
    `announce` (nothing when none is pending); returns them. The engine then serves this
    process's `warehouse_engine(url)`, checked."""
    with _engines_lock:
        engine = _engines.get(url) or create_warehouse_engine(url)
        try:
            pending = pending_migrations(engine)
            if pending:
                announce(pending)
                apply_migrations(engine)
        except BaseException:
            _engines.pop(url, None)
            engine.dispose()
            raise
        _engines[url] = engine
        return pending


def describe_pending(pending: list[str]) -> str:
    """'3 pending migration(s) (0007..0009)'."""
    versions = pending[0] if len(pending) == 1 else f"{pending[0]}..{pending[-1]}"
    return f"{len(pending)} pending migration(s) ({versions})"
