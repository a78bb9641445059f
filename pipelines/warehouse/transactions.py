"""Pooled psycopg connections of a warehouse engine, and one transaction on one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine


@contextmanager
def pooled_connection(
    engine: Engine, *, autocommit: bool = False
) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection of the engine's pool, for the driver's API (COPY, advisory locks).

    Back to the pool at the end of the block, autocommit off again; the pool rolls back
    anything left open.
    """
    pooled = engine.raw_connection()
    try:
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        conn.autocommit = autocommit
        try:
            yield conn
        finally:
            if conn.autocommit:
                try:
                    conn.autocommit = False
                except psycopg.Error:  # a lost connection: never back into the pool
                    pooled.invalidate()
    finally:
        pooled.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """One transaction on a pooled psycopg connection: committed when the block ends, rolled
    back when it raises."""
    with pooled_connection(engine) as conn, conn.transaction():
        yield conn
