"""The loader against a real Postgres: exactly one row per key, all or nothing per window."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest
from sqlalchemy import Engine

from pipelines.source.models import RejectedEvent, ServiceEvent
from pipelines.warehouse.loader import HashCollisionError, WindowLoad
from pipelines.windows import TimeWindow
from tests.integration.conftest import add_events
from tests.queries import event_rows, one, rows, scalar

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_764_288_000_000  # 2025-11-28T00:00:00Z
WINDOW = TimeWindow(T0, T0 + DAY)


def _events(
    n: int, service: str = "svc-a", start: int = T0, step: int = 1000
) -> list[ServiceEvent]:
    return [
        ServiceEvent(service, start + i * step, "normal", f'event {i} — ünïcode "q"\nline')
        for i in range(n)
    ]


def _stored(engine: Engine) -> set[tuple[str, int, str, str]]:
    return set(event_rows(engine))


def _load(
    engine: Engine, events: list[ServiceEvent], window: TimeWindow = WINDOW
) -> tuple[int, int]:
    with WindowLoad(engine, window) as load:
        add_events(load, events)
        result = load.commit()
    return result.inserted, result.already_present


def test_loading_twice_inserts_once(engine: Engine) -> None:
    events = _events(500)
    assert _load(engine, events) == (500, 0)
    assert _load(engine, events) == (0, 500)
    assert _stored(engine) == {
        (e.service_id, e.occur_time, e.event_type, e.event_info) for e in events
    }


def test_duplicates_inside_one_load_fold_into_one_row(engine: Engine) -> None:
    events = _events(10)
    assert _load(engine, events + events[:4]) == (10, 0)
    assert len(_stored(engine)) == 10


@pytest.mark.parametrize("chunk_rows", [7, 50_000])
def test_a_first_load_repeating_itself_across_chunks_counts_each_key_once(
    engine: Engine, chunk_rows: int, caplog: pytest.LogCaptureFixture
) -> None:
    # An empty window takes the direct-COPY path; the repeats (a later chunk's rows equal to an
    # earlier chunk's, and repeats inside one chunk) must fall back, not fail or double.
    events = _events(20)
    repeated = events + events[3:9] + events[:2] + events[:2]
    with (
        caplog.at_level(logging.INFO, logger="pipelines.warehouse.loader"),
        WindowLoad(engine, WINDOW, chunk_rows=chunk_rows) as load,
    ):
        add_events(load, repeated, block_rows=chunk_rows)
        result = load.commit()
    # the fallback is taken, and said at INFO: API duplicates are expected, not a warning
    fallback = [r for r in caplog.records if "repeats a key" in r.message]
    assert fallback and all(r.levelno == logging.INFO for r in fallback)
    assert (result.staged, result.staged_distinct) == (len(repeated), 20)
    assert (result.inserted, result.already_present) == (20, 0)
    assert _stored(engine) == {
        (e.service_id, e.occur_time, e.event_type, e.event_info) for e in events
    }


def test_a_window_next_to_stored_days_is_loaded_whole(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # Rows on the days before and after (including the next window's first millisecond) do not
    # make this window "already loaded", and rows inside it are matched, not inserted twice.
    neighbours = [
        ServiceEvent("svc-a", T0 - 1, "normal", "day before"),
        ServiceEvent("svc-a", T0 + DAY, "normal", "day after"),
    ]
    _load(engine, neighbours[:1], TimeWindow(T0 - DAY, T0))
    _load(engine, neighbours[1:], TimeWindow(T0 + DAY, T0 + 2 * DAY))
    events = _events(50)
    with caplog.at_level(logging.WARNING, logger="pipelines.warehouse.loader"):
        assert _load(engine, events) == (50, 0)  # the direct COPY: no repeat, no fallback
        assert _load(engine, events + _events(5, start=T0 + 60_000_000)) == (5, 50)  # merged
    assert len(_stored(engine)) == 57
    assert "unique violation" not in caplog.text


# Two printable texts with one md5 (Marc Stevens' single-block collision).
COLLIDING = (
    "TEXTCOLLBYfGiJUETHQ4hAcKSMd5zYpgqf1YRDhkmxHkhPWptrkoyz28wnI9V0aHeAuaKnak",
    "TEXTCOLLBYfGiJUETHQ4hEcKSMd5zYpgqf1YRDhkmxHkhPWptrkoyz28wnI9V0aHeAuaKnak",
)


@pytest.mark.parametrize("chunk_rows", [1, 50_000])
def test_an_md5_collision_in_one_load_fails_it_instead_of_merging(
    engine: Engine, chunk_rows: int
) -> None:
    a, b = (ServiceEvent("svc", T0, "normal", text_) for text_ in COLLIDING)
    with (
        pytest.raises(HashCollisionError),
        WindowLoad(engine, WINDOW, chunk_rows=chunk_rows) as load,
    ):
        add_events(load, [a, b], block_rows=chunk_rows)
        load.commit()
    assert _stored(engine) == set()
    assert scalar(engine, "select status from load_batches") == "failed"


def test_an_md5_collision_with_a_stored_event_fails_the_load(engine: Engine) -> None:
    a, b = (ServiceEvent("svc", T0, "normal", text_) for text_ in COLLIDING)
    assert _load(engine, [a]) == (1, 0)
    with pytest.raises(HashCollisionError):
        _load(engine, [b])
    assert _stored(engine) == {("svc", T0, "normal", COLLIDING[0])}


def test_keys_a_writer_outside_the_locks_commits_mid_pass_are_counted_present(
    engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A writer that does not take the window's locks inserts a key the probing pass is about to
    # insert: the pass waits on it, meets unique_violation when it commits, finds no md5
    # collision in the stage and runs again, which sees the key stored.
    stored, foreign, new = _events(3)
    assert _load(engine, [stored]) == (1, 0)  # the window holds events: the probing pass
    outcome: list[tuple[int, int]] = []
    with (
        psycopg.connect(database_url) as writer,
        psycopg.connect(database_url, autocommit=True) as monitor,
    ):
        writer.execute(
            "insert into service_events (service_id, occur_time, event_type, event_info,"
            " load_batch_id) select %s, %s, %s, %s, max(batch_id) from load_batches",
            foreign[:4],
        )
        with caplog.at_level(logging.WARNING, logger="pipelines.warehouse.loader"):
            loading = threading.Thread(
                target=lambda: outcome.append(_load(engine, [stored, foreign, new]))
            )
            loading.start()
            # the pass waits on the writer's row (a transaction of its own per look: the
            # activity view is read once per transaction)
            while not monitor.execute(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                " and datname = current_database()"
            ).fetchone()[0]:  # type: ignore[index]
                assert loading.is_alive(), "the load ended without waiting on the writer"
                time.sleep(0.05)
            writer.commit()
            loading.join(timeout=60)
    assert outcome == [(1, 2)]  # `new` inserted; `stored` and `foreign` already present
    assert "unique violation; running the chunk's pass again" in caplog.text
    assert _stored(engine) == {
        (e.service_id, e.occur_time, e.event_type, e.event_info) for e in (stored, foreign, new)
    }


def test_overlapping_windows_land_the_union_once(engine: Engine) -> None:
    first, second = _events(300), _events(300, start=T0 + 200_000)
    _load(engine, first)
    inserted, present = _load(engine, second)
    expected = {(e.service_id, e.occur_time, e.event_type, e.event_info) for e in first + second}
    assert _stored(engine) == expected
    assert (inserted, present) == (len(expected) - 300, 600 - len(expected))


def test_same_time_different_text_are_different_events(engine: Engine) -> None:
    a = ServiceEvent("svc", T0, "normal", "[m 1] prepare environment success")
    b = ServiceEvent("svc", T0, "normal", "[m 1] schedule resource success")
    assert _load(engine, [a, b]) == (2, 0)


@pytest.mark.parametrize("stored_first", [False, True], ids=["direct copy", "stage"])
def test_copy_text_special_characters_land_verbatim(engine: Engine, stored_first: bool) -> None:
    # encode_events writes COPY text: separators, escapes and NULL markers inside any value must
    # come back byte for byte, on the first load's direct COPY and on the stage of a reload
    odd = ["a\tb", "a\nb", "a\rb", "a\\b", "\\N", "\\.", "", "\\t", "tab\t\\n\r\n end", "ü\t服"]
    events = [
        ServiceEvent(f"svc{value}", T0 + i, f"kind{value}", value) for i, value in enumerate(odd)
    ]
    if stored_first:
        _load(engine, events[:1])
    assert _load(engine, events) == (len(odd) - stored_first, int(stored_first))
    assert _stored(engine) == {
        (e.service_id, e.occur_time, e.event_type, e.event_info) for e in events
    }


def test_event_info_of_any_length_is_keyed(engine: Engine) -> None:
    huge = "x" * 1_000_000 + "ü"
    events = [
        ServiceEvent("svc", T0, "abnormal", huge),
        ServiceEvent("svc", T0, "abnormal", huge + "!"),
    ]
    assert _load(engine, events) == (2, 0)
    assert _load(engine, events) == (0, 2)


def test_a_failed_load_leaves_no_rows_and_a_failed_audit_row(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), WindowLoad(engine, WINDOW) as load:
        add_events(load, _events(100))
        raise RuntimeError("boom")
    assert _stored(engine) == set()
    status, error = one(engine, "select status, error from load_batches")
    assert status == "failed" and "boom" in error


def test_rejected_records_are_quarantined_once(engine: Engine) -> None:
    rejects = [RejectedEvent("svc", {"occur_time": "soon"}, "occur_time is a str, not an integer")]
    for _ in range(2):
        with WindowLoad(engine, WINDOW) as load:
            load.add_rejected(rejects)
            load.commit()
    assert rows(engine, "select service_id, reason, raw_json from quarantined_events") == [
        ("svc", "occur_time is a str, not an integer", '{"occur_time":"soon"}')
    ]


def test_occurred_at_is_derived_from_occur_time(engine: Engine) -> None:
    _load(
        engine,
        [ServiceEvent("svc", 1562597251764, "normal", "start to deploy service")],
        TimeWindow(1562544000000, 1562630400000),
    )
    occurred_at = scalar(
        engine,
        "select to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')"
        " from service_events",
    )
    assert occurred_at == "2019-07-08 14:47:31.764"
