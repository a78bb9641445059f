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


@contextmanager
def locked_snapshot_transaction(engine: Engine, lock_key: int) -> Iterator[psycopg.Connection[Any]]:
    """One REPEATABLE READ transaction that starts after it holds the advisory lock `lock_key`.

    Every statement of the block reads the same snapshot, so loads committing meanwhile are
    either wholly seen or not at all; and the snapshot is taken only once the lock is held, so a
    transaction that waited for the lock sees what the one before it committed (with the lock
    taken inside the transaction, the snapshot would predate the wait, and changing the rows the
    other one changed would fail to serialise). The lock is the session's, taken and released
    outside the transaction; a lost connection releases it with the session.
    """
    with pooled_connection(engine, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (lock_key,))
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with conn.transaction():
                    yield conn
            finally:
                conn.isolation_level = None
        finally:
            if not conn.closed and not conn.broken:
                conn.execute("select pg_advisory_unlock(%s)", (lock_key,))
