"""The loader under concurrency and failure: exact sets, no duplicate, no deadlock, no partial load,
and a complete audit row."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from pipelines.source.models import ServiceEvent
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.loader import LoadResult, WindowLoad
from pipelines.windows import TimeWindow
from tests.integration.conftest import add_events
from tests.queries import event_rows, scalar

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_764_288_000_000  # 2025-11-28T00:00:00Z
CHUNK = 97  # small chunks: every load below spans several insert statements
Row = tuple[str, int, str, str]


def _events(window: TimeWindow, services: int = 3, step: int = 600_000) -> list[ServiceEvent]:
    """Events every `step` ms of `window` for a few services, texts keyed by time only, so two
    windows that overlap produce the same events in the overlap."""
    return [
        ServiceEvent(f"svc-{s}", t, "normal", f'[svc {s}] event at {t} — ü "q"\n')
        for t in range(window.start_ms, window.end_ms, step)
        for s in range(services)
    ]


def _rows(events: list[ServiceEvent]) -> set[Row]:
    return {(e.service_id, e.occur_time, e.event_type, e.event_info) for e in events}


def _audit(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("select * from load_batches"))]


def _load(engine: Engine, window: TimeWindow, events: list[ServiceEvent]) -> LoadResult:
    with WindowLoad(engine, window, chunk_rows=CHUNK) as load:
        add_events(load, events, block_rows=CHUNK)
        return load.commit()


def _load_in_process(database_url: str, start_ms: int, end_ms: int, repeat: int) -> None:
    engine = create_warehouse_engine(database_url)
    window = TimeWindow(start_ms, end_ms)
    for _ in range(repeat):
        _load(engine, window, _events(window))
    engine.dispose()


# Three windows over two days: A and B overlap by half a day, C equals A.
WINDOWS = [
    TimeWindow(T0, T0 + DAY),
    TimeWindow(T0 + DAY // 2, T0 + DAY + DAY // 2),
    TimeWindow(T0, T0 + DAY),
]


def _expected() -> set[Row]:
    return set().union(*(_rows(_events(w)) for w in WINDOWS))


def test_loads_spanning_many_chunks_count_repeats_once(engine: Engine) -> None:
    window = WINDOWS[0]
    events = _events(window)
    # the same events again, in another order, so repeats land in other chunks
    result = _load(engine, window, events + events[::-1])
    assert (result.staged, result.staged_distinct) == (2 * len(events), len(events))
    assert (result.inserted, result.already_present) == (len(events), 0)
    again = _load(engine, window, events)
    assert (again.inserted, again.already_present) == (0, len(events))
    stored = event_rows(engine)
    assert len(stored) == len(set(stored)) == len(events)


def test_concurrent_overlapping_loads_from_threads_land_the_exact_set(engine: Engine) -> None:
    barrier = threading.Barrier(len(WINDOWS) * 2)
    results: list[LoadResult] = []
    errors: list[BaseException] = []

    def run(window: TimeWindow) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(_load(engine, window, _events(window)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in WINDOWS * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a load hung (deadlock?)"
    assert errors == []
    stored = event_rows(engine)
    assert len(stored) == len(set(stored))
    assert set(stored) == _expected()
    assert sum(r.inserted for r in results) == len(_expected())
    for r in results:
        assert r.inserted + r.already_present == r.staged_distinct == r.staged
    assert {a["status"] for a in _audit(engine)} == {"succeeded"}


def test_concurrent_overlapping_loads_from_processes_land_the_exact_set(
    engine: Engine, database_url: str
) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_load_in_process, args=(database_url, w.start_ms, w.end_ms, 2))
        for w in WINDOWS
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=180)
    assert [p.exitcode for p in processes] == [0] * len(processes)
    stored = event_rows(engine)
    assert len(stored) == len(set(stored))
    assert set(stored) == _expected()
    audit = _audit(engine)
    assert len(audit) == 2 * len(WINDOWS) and {a["status"] for a in audit} == {"succeeded"}
    assert sum(int(str(a["inserted"])) for a in audit) == len(_expected())


def _raising_after(events: list[ServiceEvent], n: int) -> Iterator[ServiceEvent]:
    yield from events[:n]
    raise ConnectionError("the API went away mid-window")


def test_a_load_failing_mid_copy_after_chunks_were_inserted_leaves_no_rows(
    engine: Engine,
) -> None:
    window = WINDOWS[0]
    events = _events(window)
    with pytest.raises(ConnectionError), WindowLoad(engine, window, chunk_rows=CHUNK) as load:
        add_events(load, _raising_after(events, 5 * CHUNK + 3), block_rows=CHUNK)
    assert event_rows(engine) == []
    (audit,) = _audit(engine)
    assert audit["status"] == "failed" and "API went away" in str(audit["error"])
    assert audit["finished_at"] is not None and audit["inserted"] == 0
    # the window loads fine afterwards
    assert _load(engine, window, events).inserted == len(events)


def test_a_load_whose_connection_is_killed_mid_copy_leaves_no_rows(
    engine: Engine, database_url: str
) -> None:
    window = WINDOWS[0]
    events = _events(window)

    def killing_after(load: WindowLoad, n: int) -> Iterator[ServiceEvent]:
        yield from events[:n]
        assert load._conn is not None
        pid = load._conn.info.backend_pid
        with psycopg.connect(database_url, autocommit=True) as killer:
            killer.execute("select pg_terminate_backend(%s)", (pid,))
        yield from events[n:]

    with (
        pytest.raises(psycopg.OperationalError),
        WindowLoad(engine, window, chunk_rows=CHUNK) as load,
    ):
        add_events(load, killing_after(load, 3 * CHUNK + 10), block_rows=CHUNK)
    assert event_rows(engine) == []
    (audit,) = _audit(engine)
    assert audit["status"] == "failed" and audit["finished_at"] is not None
    assert _load(engine, window, events).inserted == len(events)


def test_events_outside_the_window_are_refused(engine: Engine) -> None:
    window = WINDOWS[0]
    stray = ServiceEvent("svc-0", window.end_ms, "normal", "on the next midnight")
    with pytest.raises(ValueError, match="outside"), WindowLoad(engine, window) as load:
        add_events(load, [*_events(window)[:10], stray])
    assert event_rows(engine) == []


def test_the_audit_row_holds_the_whole_story(engine: Engine) -> None:
    window = WINDOWS[0]
    events = _events(window)
    counts = {"services": 3, "pages": 7, "requests": 9, "retries": 2, "fetched": len(events) + 5}
    counts |= {"out_of_window": 5, "services_missing": 0}
    with WindowLoad(engine, window, run_id="run-42", partition_key="2025-11-28") as load:
        add_events(load, events[:100])
        first = load.commit(counts)
    with WindowLoad(engine, window, run_id="run-43", partition_key="2025-11-28") as load:
        add_events(load, events)
        second = load.commit(counts)
    audit = sorted(_audit(engine), key=lambda a: int(str(a["batch_id"])))
    assert [a["batch_id"] for a in audit] == [first.batch_id, second.batch_id]
    expected_common = {
        "partition_key": "2025-11-28",
        "window_start_ms": window.start_ms,
        "window_end_ms": window.end_ms,
        "status": "succeeded",
        "error": None,
        **counts,
    }
    assert {k: audit[0][k] for k in expected_common} == expected_common
    assert (audit[0]["run_id"], audit[0]["inserted"], audit[0]["already_present"]) == (
        "run-42",
        100,
        0,
    )
    assert (audit[1]["run_id"], audit[1]["inserted"], audit[1]["already_present"]) == (
        "run-43",
        len(events) - 100,
        100,
    )
    for a in audit:
        assert a["started_at"] is not None and a["finished_at"] >= a["started_at"]  # type: ignore[operator]
    orphans = (
        "select count(*) from service_events as e where not exists"
        " (select 1 from load_batches as b where b.batch_id = e.load_batch_id)"
    )
    assert scalar(engine, orphans) == 0


def test_a_key_committed_by_a_writer_without_the_window_lock_is_skipped_not_doubled(
    engine: Engine, database_url: str
) -> None:
    """The fallback path: the plain insert meets an uncommitted foreign row, waits for it,
    gets unique_violation once it commits, and redoes the chunk with ON CONFLICT."""
    window = WINDOWS[0]
    events = _events(window)[:50]
    foreign = events[20]
    with psycopg.connect(database_url) as writer:
        batch_id = writer.execute(
            "insert into load_batches (window_start_ms, window_end_ms) values (0, 1) "
            "returning batch_id"
        ).fetchone()[0]  # type: ignore[index]
        writer.execute(
            "insert into service_events (service_id, occur_time, event_type, event_info, "
            "load_batch_id) values (%s, %s, %s, %s, %s)",
            (
                foreign.service_id,
                foreign.occur_time,
                foreign.event_type,
                foreign.event_info,
                batch_id,
            ),
        )
        outcome: list[LoadResult] = []
        loader = threading.Thread(target=lambda: outcome.append(_load(engine, window, events)))
        loader.start()
        loader.join(timeout=1.5)
        assert loader.is_alive(), "the load should wait on the uncommitted foreign row"
        writer.commit()
        loader.join(timeout=60)
    (result,) = outcome
    assert (result.inserted, result.already_present, result.staged_distinct) == (49, 1, 50)
    stored = event_rows(engine)
    assert len(stored) == len(set(stored)) and set(stored) == _rows(events)
