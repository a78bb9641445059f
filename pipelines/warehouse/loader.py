"""Load one window of events exactly once: COPY them in, commit with the audit row.

A first load of a window COPYs straight into service_events; a load of a window that holds
events COPYs into a stage and inserts the keys not yet stored (see `WindowLoad._flush_chunk`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import psycopg
from sqlalchemy import Engine

from pipelines import settings
from pipelines.source.models import RejectedEvent, ServiceEvent
from pipelines.warehouse.audit import fail_load_batch, finish_load_batch, open_load_batch
from pipelines.warehouse.encoding import EncodedEvents, encode_copy_rows, raw_record_json
from pipelines.warehouse.sql_files import read_sql
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

_COLUMNS = "(service_id, occur_time, event_type, event_info, load_batch_id)"
_COPY_STAGE = f"copy event_stage {_COLUMNS} from stdin"
_COPY_EVENTS = f"copy service_events {_COLUMNS} from stdin"
DAY_MS = 86_400_000
# First key of the two-int advisory locks that serialize loads of the same UTC day ("ME" 0x4d45).
LOAD_LOCK_CLASS = 0x4D45
# Rows per chunk: big enough for set-based inserts, small enough that the pages fetched while a
# chunk is inserted stay a few tens of MB (see ingest.py) and the chunk's sort fits in work_mem.
DEFAULT_CHUNK_ROWS = 50_000


class LoadLockTimeout(RuntimeError):
    """Another load held the days of this window longer than PIPELINES_WAIT_TIMEOUT_S."""


class HashCollisionError(RuntimeError):
    """Two different event texts share an md5 at the same service and time."""


@dataclass
class _ChunkTotals:
    distinct: int = 0
    already_present: int = 0
    inserted: int = 0


@dataclass(frozen=True)
class LoadResult:
    batch_id: int
    staged: int
    staged_distinct: int
    inserted: int
    already_present: int
    quarantined: int


class WindowLoad:
    """One transactional load of a window.

    The audit row in `load_batches` is committed first (status running) on its own connection.
    Then one transaction takes the advisory locks of the window's UTC days (loads of overlapping
    windows run one after the other; others in parallel), and events are moved into
    `service_events` every `chunk_rows` rows: COPYed straight in while the window held no events
    when the load began, else COPYed into a session-local stage and inserted where absent (see
    `_flush_chunk`). Everything commits together with the audit row's final counts; a failure
    rolls the events back and marks the audit row failed.
    """

    def __init__(
        self,
        engine: Engine,
        window: TimeWindow,
        *,
        run_id: str | None = None,
        partition_key: str | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ):
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be positive")
        self._engine = engine
        self._chunk_rows = chunk_rows
        self._totals = _ChunkTotals()
        # encoded events taken but not yet moved into service_events, and how many
        self._chunk: list[EncodedEvents] = []
        self._chunk_len = 0
        self.window = window
        self._run_id = run_id
        self._partition_key = partition_key
        self._pooled: Any = None
        self._conn: psycopg.Connection[Any] | None = None
        self.batch_id = -1
        self.staged = 0
        self.quarantined = 0
        self._finished = False
        self._fresh = False

    def __enter__(self) -> Self:
        self._pooled = self._engine.raw_connection()
        conn = self._pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        conn.autocommit = False
        self._conn = conn
        try:
            run = {"run_id": self._run_id, "partition_key": self._partition_key}
            self.batch_id = open_load_batch(self._engine, self.window, run, conn.info.backend_pid)
            self._begin(conn)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _begin(self, conn: psycopg.Connection[Any]) -> None:
        """Take the window's day locks (waiting at most PIPELINES_WAIT_TIMEOUT_S), take over
        the days of dead loads, and prepare the stage."""
        first_day, last_day = self.window.start_ms // DAY_MS, (self.window.end_ms - 1) // DAY_MS
        days = {"lock_class": LOAD_LOCK_CLASS, "first_day": first_day, "last_day": last_day}
        timeout_s = settings.wait_timeout_s()
        # lock_timeout bounds every lock wait of this transaction, the day locks first.
        conn.execute("select set_config('lock_timeout', %s, true)", (f"{timeout_s}s",))
        holders = conn.execute(read_sql("load/load_lock_holders.sql"), days).fetchall()
        if holders:
            log.warning(
                "batch %s: waiting up to %d s for the load lock of window %s, held by %s",
                self.batch_id, timeout_s, self.window, _describe_holders(holders),
            )  # fmt: skip
        try:
            conn.execute(read_sql("load/lock_load_window.sql"), days)
        except psycopg.errors.LockNotAvailable:
            raise LoadLockTimeout(
                f"window {self.window}: another load held its days' lock for over {timeout_s} s "
                f"({_describe_holders(holders) or 'holder unknown'}); gave up "
                f"({settings.WAIT_TIMEOUT_S}={timeout_s})"
            ) from None
        window = {"window_start_ms": self.window.start_ms, "window_end_ms": self.window.end_ms}
        abandoned = conn.execute(
            read_sql("load/abandon_dead_loads.sql"), {"batch_id": self.batch_id, **window}
        ).fetchall()
        if abandoned:
            log.warning(
                "batch %s takes over window %s from dead loads %s",
                self.batch_id, self.window, ", ".join(str(row[0]) for row in abandoned),
            )  # fmt: skip
        # the probing pass's sort (distinct + key order) stays in memory; this transaction only
        conn.execute("set local work_mem = '64MB'")
        # encode_events writes UTF-8, whatever the server's default client encoding
        conn.execute("set local client_encoding = 'UTF8'")
        conn.execute(read_sql("load/create_event_stage.sql"))
        # A window with no stored events (a first load) needs no probe of the key index: every
        # row is new unless it repeats this load, which unique_violation reports.
        bounds = {"start_ms": self.window.start_ms, "end_ms": self.window.end_ms}
        self._fresh = not _scalar(conn, read_sql("load/window_has_events.sql"), bounds)

    def encode_events(self, events: Sequence[ServiceEvent]) -> EncodedEvents:
        """The events as this load's COPY rows, for `add_encoded`.

        Safe to call from any thread, so the extraction workers encode their pages while this
        load's connection is busy with Postgres. Events outside the window are refused: the
        window's advisory locks are what keeps concurrent loads off each other's keys.
        """
        return encode_copy_rows(events, f"\t{self.batch_id}\n", self.window)

    def add_copy_rows(self, block: EncodedEvents) -> int:
        """Take rows that `encode_copy_rows` made before this load had a batch id (rows ending
        in a bare newline): the batch id column is added and the block taken as `add_encoded`.

        Their events must lie in this load's window (the caller routed them by time).
        """
        # Inside values a newline is escaped (two characters): every raw 0x0A ends a row.
        data = block.data.replace(b"\n", f"\t{self.batch_id}\n".encode())
        return self.add_encoded(block._replace(data=data))

    def add_encoded(self, encoded: EncodedEvents) -> int:
        """Take encoded events into the current chunk; a full chunk moves into `service_events`."""
        self._require_conn()
        self._chunk.append(encoded)
        self._chunk_len += encoded.rows
        self.staged += encoded.rows
        if self._chunk_len >= self._chunk_rows:
            self._flush_chunk()
        return encoded.rows

    def add_rejected(self, rejected: Iterable[RejectedEvent]) -> int:
        """Keep malformed records in quarantine with their reason (deduplicated on rerun)."""
        conn = self._require_conn()
        params = [
            {
                "service_id": r.service_id,
                "window_start_ms": self.window.start_ms,
                "window_end_ms": self.window.end_ms,
                "reason": r.reason,
                "raw_json": raw_record_json(r.raw),
                "batch_id": self.batch_id,
            }
            for r in rejected
        ]
        if params:
            with conn.cursor() as cur:
                cur.executemany(read_sql("load/insert_quarantined.sql"), params)
        self.quarantined += len(params)
        return len(params)

    def commit(self, counts: dict[str, int] | None = None) -> LoadResult:
        """Move the last chunk into `service_events` and commit with the audit row's counts."""
        conn = self._require_conn()
        if self._chunk_len:
            self._flush_chunk()
        totals = self._totals
        result = LoadResult(
            batch_id=self.batch_id,
            staged=self.staged,
            staged_distinct=totals.distinct,
            inserted=totals.inserted,
            already_present=totals.already_present,
            quarantined=self.quarantined,
        )
        if totals.inserted:
            # the marts rebuild the days these events changed, whichever command loaded them
            conn.execute(
                read_sql("load/queue_mart_rebuild.sql"),
                {
                    "batch_id": self.batch_id,
                    "start_ms": self.window.start_ms,
                    "end_ms": self.window.end_ms,
                },
            )
        finish_load_batch(
            conn,
            self.batch_id,
            "succeeded",
            {
                **(counts or {}),
                "inserted": result.inserted,
                "already_present": result.already_present,
                "quarantined": result.quarantined,
            },
        )
        conn.commit()
        self._finished = True
        return result

    def _flush_chunk(self) -> None:
        """Move the chunk into `service_events`, add its counts, start the next chunk.

        While the window held no events when the load began, the chunk is COPYed straight into
        `service_events`: every row is new unless it repeats this same load. A repeat (or two
        texts with one md5) raises unique_violation, which undoes the COPY to a savepoint; that
        chunk and the later ones then take the probing path: COPY into the stage, then one pass
        that folds repeats, merges the stage with the stored rows of its services, compares
        texts and inserts what is absent (insert_new_events.sql). If that pass meets a
        unique_violation too, the stage is searched for two texts with one md5; without one (a
        writer that does not take the window locks committed some keys), the pass runs again
        and finds them stored. An md5 collision raises HashCollisionError.
        """
        conn = self._require_conn()
        # in key order, as pages of one service come in time order: the probing pass's sort of
        # the stage then finds its input nearly sorted
        chunk = [encoded.data for encoded in sorted(self._chunk, key=lambda e: e.first_key)]
        rows = self._chunk_len
        self._chunk, self._chunk_len = [], 0
        if self._fresh:
            try:
                with conn.transaction(savepoint_name="copy_new_events"):
                    _copy_blocks(conn, _COPY_EVENTS, chunk)
            except psycopg.errors.UniqueViolation:
                # Expected: the API serves some events twice. Not worth a warning per batch.
                log.info(
                    "batch %s: the load repeats a key (an API duplicate); merging from this "
                    "chunk on",
                    self.batch_id,
                )
                self._fresh = False
            else:
                self._totals.distinct += rows
                self._totals.inserted += rows
                return
        _copy_blocks(conn, _COPY_STAGE, chunk)
        del chunk
        params = {"batch_id": self.batch_id}
        row: tuple[Any, ...] | None
        query = read_sql("load/insert_new_events.sql")
        try:
            with conn.transaction(savepoint_name="insert_new_events"):
                row = conn.execute(query, params).fetchone()
        except psycopg.errors.UniqueViolation:
            # Two staged texts with one md5, or keys that a writer outside the window locks
            # committed while the pass ran: the first fails the load; the second's rows are
            # seen by the pass run again (a new statement, a new snapshot) and counted present.
            _raise_on_collisions(conn, "load/find_staged_hash_collisions.sql", "staged")
            log.warning("batch %s: unique violation; running the chunk's pass again", self.batch_id)
            row = conn.execute(query, params).fetchone()
        assert row is not None
        distinct, repeated, present, collisions, _absent, inserted = (int(v) for v in row)
        if collisions:
            _raise_on_collisions(conn, "load/find_hash_collisions.sql", "stored", collisions)
        self._totals.distinct += distinct - repeated
        self._totals.already_present += present
        self._totals.inserted += inserted
        conn.execute(read_sql("load/truncate_event_stage.sql"))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, pooled = self._conn, self._pooled
        self._conn = self._pooled = None
        if conn is not None and not self._finished:
            try:
                conn.rollback()
            except psycopg.Error:
                # a lost connection (killed backend, network): the server rolled back already
                log.warning("batch %s: rollback failed; dropping the connection", self.batch_id)
                if pooled is not None:
                    pooled.invalidate()
        if pooled is not None:
            pooled.close()
        if not self._finished and self.batch_id >= 0:
            error = f"{exc_type.__name__}: {exc}" if exc_type else "load ended without commit"
            fail_load_batch(self._engine, self.batch_id, error)

    def _require_conn(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError("WindowLoad used outside its `with` block")
        return self._conn


def _describe_holders(holders: Sequence[tuple[Any, ...]]) -> str:
    """'backend 123 (batch 7 of run R, day 2026-11-01)' per holder of a day lock."""
    return ", ".join(
        f"backend {pid}" + (f" (batch {batch_id} of run {run_id}, {key})" if batch_id else "")
        for pid, batch_id, run_id, key in holders
    )


def _raise_on_collisions(
    conn: psycopg.Connection[Any], query: str, other: str, counted: int = 0
) -> None:
    """HashCollisionError when `query` finds staged events sharing an md5 with a different
    `other` text (or the pass `counted` some), naming the first."""
    found = conn.execute(read_sql(query)).fetchall()
    if found or counted:
        raise HashCollisionError(
            f"{max(len(found), counted)} staged event(s) share an md5 with a different {other} "
            "text" + (f", e.g. service {found[0][0]} at {found[0][1]}" if found else "")
        )


def _copy_blocks(conn: psycopg.Connection[Any], statement: str, blocks: list[bytes]) -> None:
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for block in blocks:
            copy.write(block)


def _scalar(conn: psycopg.Connection[Any], query: str, params: dict[str, Any] | None = None) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])
