"""Connections to the warehouse: a configured Postgres, or the embedded one."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from pipelines.warehouse.embedded import start_embedded_postgres


def sqlalchemy_url(database_url: str) -> str:
    """Turn a `postgresql://` (or `postgres://`) URL into one for SQLAlchemy on psycopg 3."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.get_backend_name() != "postgresql":
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The configured URL, or that of the embedded server (started on demand) when unset."""
    if database_url:
        return database_url
    return start_embedded_postgres(data_dir)


def create_warehouse_engine(database_url: str, pool_size: int = 5) -> Engine:
    """A SQLAlchemy 2 engine on psycopg 3 for the warehouse."""
    return create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"application_name": "modelarts-events-pipeline"},
    )
