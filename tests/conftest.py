"""Shared fixtures: a real Postgres (DATABASE_URL, or the embedded server) and a fresh database
per test, migrated by the project's own migrations runner."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

# The tests use fixed dates from 2024 on; the default first partition moves with the calendar.
# Set before any `pipelines.assets` import (the partitions are built at import).
os.environ.setdefault("PIPELINES_PARTITIONS_START", "2024-01-01")
# ... and those days lie beyond the API's default retention of 30 days (pipelines/horizon.py):
# a long horizon, so that they load; the horizon's tests set their own.
os.environ.setdefault("MODELARTS_RETENTION_DAYS", "36500")

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.embedded import ensure_database, start_embedded_server
from pipelines.warehouse.migrations import apply_migrations


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Postgres server on which tests may create databases."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    return start_embedded_server(Path(tmp_path_factory.mktemp("embedded-pg")))


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = ensure_database(pg_admin_url, name)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated warehouse engine on the test's own database."""
    engine = create_warehouse_engine(database_url)
    apply_migrations(engine)
    yield engine
    engine.dispose()
