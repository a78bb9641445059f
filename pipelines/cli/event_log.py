"""A CLI run's writes to a SQLite Dagster instance (the default dagster.yaml), made cheap.

Dagster's SQLite event log opens a new engine and connection for every event it stores, commits
it with an fsync, and closes the connection, which, the database being in WAL mode, checkpoints
the WAL into the database file with another fsync. A 20-service day stores ~60 events (and reads
a few), each in the run's own database and, for asset and run-status events, again in the
index: those opens, fsyncs and checkpoints were most of the run's Dagster overhead (bench/
README.md, "Fixed cost of a small run, continued").

`speed_up` gives the instance's SQLite event log one connection per database for the process,
with `synchronous=NORMAL`: in WAL mode a commit is then written without waiting for the disk,
and the WAL is checkpointed by SQLite every 1000 pages and when the connections close (`close`,
and at exit). The files, their schema and what is stored are Dagster's own: the UI and the daemon
read the runs as before. What NORMAL gives up is only the last events of a run when the machine
itself (not the process) loses power or crashes; a killed process loses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import Connection, Engine
from sqlalchemy.pool import StaticPool


class _KeptConnections(SqliteEventLogStorage):
    """SqliteEventLogStorage with one kept connection per shard (a run's database, the index).

    Only ever set as the class of an existing SqliteEventLogStorage (`speed_up`): its state is
    the parent's, plus `_kept` made on first use."""

    _kept: dict[str, Engine]

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:  # as the parent: one thread at a time, which one does not matter
            kept = self.__dict__.setdefault("_kept", {})
            engine = kept.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=StaticPool,
                    connect_args={
                        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                        "check_same_thread": False,  # the lock above serializes its users
                    },
                )
                new = not os.path.exists(self.path_for_shard(shard))
                with engine.connect() as conn:
                    if new:  # as Dagster makes it, but before its tables: their creation too
                        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                    _synchronous_normal_in_wal(conn)
                if shard not in self._initialized_dbs:
                    self._initdb(engine)  # on the kept connection
                    self._initialized_dbs.add(shard)
                kept[shard] = engine
            with engine.connect() as conn, conn.begin():
                yield conn

    def close(self) -> None:
        """Close the kept connections (each checkpoints its WAL); they reopen when used."""
        with self._db_lock:
            for engine in self.__dict__.pop("_kept", {}).values():
                engine.dispose()

    def dispose(self) -> None:
        self.close()
        super().dispose()


def _synchronous_normal_in_wal(conn: Connection) -> None:
    """NORMAL on the kept connection (StaticPool: the setting stays with it) if its database is
    in WAL mode, as Dagster makes them; in rollback-journal mode NORMAL could corrupt the file on
    a power loss, so such a database keeps the default (FULL)."""
    (mode,) = conn.exec_driver_sql("PRAGMA journal_mode").one()
    if str(mode).lower() == "wal":
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")


def speed_up(storage: object) -> bool:
    """Keep the connections of `storage` if it is Dagster's SQLite event log (exactly that class:
    Postgres, or a subclass of someone's, is left as it is); whether it was."""
    if type(storage) is not SqliteEventLogStorage:
        return type(storage) is _KeptConnections
    storage.__class__ = _KeptConnections
    return True


def close(storage: object) -> None:
    """Close what `speed_up` kept open, if anything."""
    if isinstance(storage, _KeptConnections):
        storage.close()
