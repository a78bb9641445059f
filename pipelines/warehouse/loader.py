"""Load one window of events exactly once: COPY them in, commit with the audit row.

A first load of a window COPYs straight into service_events; a load of a window that holds
events COPYs into a stage and inserts the keys not yet stored (see `WindowLoad._flush_chunk`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from types import TracebackType
from typing import Any, NamedTuple, Self

import orjson
import psycopg
from sqlalchemy import Engine

from pipelines import settings
from pipelines.source.models import RejectedEvent, ServiceEvent, ServiceInfo
from pipelines.warehouse.sql_files import read_sql
from pipelines.windows import TimeWindow

log = logging.getLogger(__name__)

_COLUMNS = "(service_id, occur_time, event_type, event_info, load_batch_id)"
_COPY_STAGE = f"copy event_stage {_COLUMNS} from stdin"
_COPY_EVENTS = f"copy service_events {_COLUMNS} from stdin"
# COPY text format: these four characters inside a value are written as escapes
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
DAY_MS = 86_400_000
# First key of the two-int advisory locks that serialize loads of the same UTC day ("ME" 0x4d45).
LOAD_LOCK_CLASS = 0x4D45
# Rows per chunk: big enough for set-based inserts, small enough that the pages fetched while a
# chunk is inserted stay a few tens of MB (see ingest.py) and the chunk's sort fits in work_mem.
DEFAULT_CHUNK_ROWS = 50_000


class EncodedEvents(NamedTuple):
    """Events as rows of COPY text (UTF-8), ready to send: see `WindowLoad.encode_events`."""

    data: bytes
    rows: int
    # (service_id, occur_time) of the first event: a chunk's blocks are sent in this order
    first_key: tuple[str, int]


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


@contextmanager
def _raw_connection(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A plain psycopg connection from the engine's pool (COPY needs the driver's API)."""
    pooled = engine.raw_connection()
    try:
        driver = pooled.driver_connection
        assert isinstance(driver, psycopg.Connection)
        yield driver
    finally:
        pooled.close()  # back to the pool, which rolls back anything left open


def encode_copy_rows(
    events: Sequence[ServiceEvent], row_end: str, window: TimeWindow | None = None
) -> EncodedEvents:
    """Events as rows of COPY text (UTF-8), each row ending in `row_end` (the load's batch id
    column and a newline, or a bare newline to add it later: `WindowLoad.add_copy_rows`).

    With `window` given, an event outside it raises ValueError.
    """
    if window is not None:
        start_ms, end_ms = window.start_ms, window.end_ms
        for service_id, occur_time, _, _, _ in events:
            if not start_ms <= occur_time < end_ms:
                raise ValueError(
                    f"event of service {service_id} at {occur_time} is outside "
                    f"the load's window {window}"
                )
    text = "".join(
        [
            f"{service_id}\t{occur_time}\t{event_type}\t{event_info}{row_end}"
            for service_id, occur_time, event_type, event_info, _ in events
        ]
    )
    # A tab, newline, CR or backslash inside a value shows as extra separators or a
    # backslash: only then are the values escaped one by one.
    n = len(events)
    tabs = 3 + row_end.count("\t")
    if text.count("\t") != tabs * n or text.count("\n") != n or "\\" in text or "\r" in text:
        text = "".join(
            f"{service_id.translate(_COPY_ESCAPES)}\t{occur_time}\t"
            f"{event_type.translate(_COPY_ESCAPES)}\t{event_info.translate(_COPY_ESCAPES)}"
            f"{row_end}"
            for service_id, occur_time, event_type, event_info, _ in events
        )
    first_key = (events[0][0], events[0][1]) if n else ("", 0)
    return EncodedEvents(text.encode("utf-8"), n, first_key)


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
            self.batch_id = self._open_audit_row(conn.info.backend_pid)
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

    def add_events(self, events: Iterable[ServiceEvent]) -> int:
        """Encode and take events (see `encode_events`); returns how many."""
        iterator = iter(events)
        n = 0
        while part := list(islice(iterator, min(self._chunk_rows, 10_000))):
            n += self.add_encoded(self.encode_events(part))
        return n

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
        conn.execute(
            read_sql("load/finish_load_batch.sql"),
            _audit_params(self.batch_id, "succeeded", counts or {}, result, None),
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
        unique_violation too (two texts with one md5, or a writer that does not take the window
        locks), it is redone with ON CONFLICT DO NOTHING and the skipped keys' texts are
        compared. An md5 collision raises HashCollisionError.
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
            log.warning(
                "batch %s: unique violation; redoing the chunk with on conflict", self.batch_id
            )
            row = conn.execute(_on_conflict_do_nothing(query), params).fetchone()
        assert row is not None
        distinct, repeated, present, collisions, absent, inserted = (int(v) for v in row)
        if inserted < absent and not collisions:
            collisions = len(conn.execute(read_sql("load/find_hash_collisions.sql")).fetchall())
        if collisions:
            sample = conn.execute(read_sql("load/find_hash_collisions.sql")).fetchmany(1)
            raise HashCollisionError(
                f"{collisions} staged event(s) share an md5 with a different stored text, "
                + (f"e.g. service {sample[0][0]} at {sample[0][1]}" if sample else "")
            )
        self._totals.distinct += distinct - repeated
        self._totals.already_present += present + (absent - inserted)
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
            self._close_audit_row_failed(error)

    def _require_conn(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError("WindowLoad used outside its `with` block")
        return self._conn

    def _open_audit_row(self, loader_pid: int) -> int:
        with _raw_connection(self._engine) as conn, conn.transaction():
            row = conn.execute(
                read_sql("load/start_load_batch.sql"),
                {
                    "run_id": self._run_id,
                    "partition_key": self._partition_key,
                    "window_start_ms": self.window.start_ms,
                    "window_end_ms": self.window.end_ms,
                    "loader_pid": loader_pid,
                },
            ).fetchone()
        assert row is not None
        return int(row[0])

    def _close_audit_row_failed(self, error: str) -> None:
        try:
            with _raw_connection(self._engine) as conn, conn.transaction():
                conn.execute(
                    read_sql("load/finish_load_batch.sql"),
                    _audit_params(self.batch_id, "failed", {}, None, error[:2000]),
                )
        except Exception:  # the load's own error matters more than the audit update's
            log.exception("could not mark load batch %s failed", self.batch_id)


def record_failed_load(
    engine: Engine,
    window: TimeWindow,
    error: BaseException,
    *,
    run_id: str | None = None,
    partition_key: str | None = None,
) -> int:
    """The audit row of a window whose load never began because its extraction failed (a range
    extracts all its days before loading any): status failed, with the error. Returns its id."""
    load = WindowLoad(engine, window, run_id=run_id, partition_key=partition_key)
    with _raw_connection(engine) as conn:
        loader_pid = conn.info.backend_pid
    load.batch_id = load._open_audit_row(loader_pid)
    load._close_audit_row_failed(f"extraction failed: {type(error).__name__}: {error}")
    return load.batch_id


def _describe_holders(holders: Sequence[tuple[Any, ...]]) -> str:
    """'backend 123 (batch 7 of run R, day 2026-11-01)' per holder of a day lock."""
    return ", ".join(
        f"backend {pid}" + (f" (batch {batch_id} of run {run_id}, {key})" if batch_id else "")
        for pid, batch_id, run_id, key in holders
    )


def upsert_services(engine: Engine, services: Iterable[ServiceInfo]) -> int:
    """Insert or refresh services in the `services` dimension; returns how many."""
    params: list[dict[str, Any]] = [
        {
            "service_id": s.service_id,
            "service_name": s.service_name,
            "status": s.status,
            "infer_type": s.infer_type,
            "owner": s.owner,
            "publish_at_ms": s.publish_at_ms,
            "raw": raw_record_json(s.raw),
        }
        for s in services
    ]
    # One order for every writer, so concurrent upserts cannot deadlock.
    params.sort(key=lambda row: str(row["service_id"]))
    with _raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(read_sql("load/upsert_services.sql"), params)
    return len(params)


def _on_conflict_do_nothing(query: str) -> str:
    """insert_new_events.sql with its insert skipping keys that are already stored."""
    returning = "\n    returning 1\n"
    assert query.count(returning) == 1
    return query.replace(
        returning, "\n    on conflict on constraint service_events_key do nothing" + returning
    )


def _copy_blocks(conn: psycopg.Connection[Any], statement: str, blocks: list[bytes]) -> None:
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for block in blocks:
            copy.write(block)


def _scalar(conn: psycopg.Connection[Any], query: str, params: dict[str, Any] | None = None) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def raw_record_json(raw: Any) -> str:
    """JSON text of a raw record (a NUL stays the six characters of its JSON escape).

    The standard library takes over where orjson refuses: integers beyond 64 bits and lone
    surrogates, both of which a hostile body can carry into a rejected record.
    """
    try:
        return orjson.dumps(raw, default=repr).decode("utf-8")
    except TypeError:
        return json.dumps(raw, default=repr, ensure_ascii=True)


def _audit_params(
    batch_id: int,
    status: str,
    counts: dict[str, int],
    result: LoadResult | None,
    error: str | None,
) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "status": status,
        "services": counts.get("services", 0),
        "services_missing": counts.get("services_missing", 0),
        "pages": counts.get("pages", 0),
        "requests": counts.get("requests", 0),
        "retries": counts.get("retries", 0),
        "fetched": counts.get("fetched", 0),
        "out_of_window": counts.get("out_of_window", 0),
        "inserted": result.inserted if result else 0,
        "already_present": result.already_present if result else 0,
        "quarantined": result.quarantined if result else counts.get("quarantined", 0),
        "error": error,
    }
