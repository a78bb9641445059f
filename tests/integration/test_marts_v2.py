"""The marts over v2 event records (new-version services) and over both generations at once:
hand-written records -> expected attempts, phases and daily rows; and the simulator's histories as
v1 events and as v2 records (pipelines/simulator/records.py) -> the same truth, day by day, rerun
and out of order, in both text families."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from pipelines import settings
from pipelines.cli import main
from pipelines.report.queries import read_report_data
from pipelines.report.render import render_html
from pipelines.simulator import families
from pipelines.simulator.history import HistoryConfig, generate_history, truth_as_of
from pipelines.simulator.models import History
from pipelines.simulator.process import running_simulator
from pipelines.simulator.records import EventRecord, event_records
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import rebuild_marts
from pipelines.windows import TimeWindow
from tests import queries
from tests.integration.conftest import add_events, simulator_days, simulator_env
from tests.integration.test_deployment_assets import served_truth
from tests.integration.test_deployment_marts import (
    assert_marts_equal_truth,
    day_window,
    load_day,
    snapshot,
    utc_date,
)
from tests.v2records import store_records

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 18)
DAY_MS = 86_400_000
T0 = (DAY - dt.date(1970, 1, 1)).days * DAY_MS + 10 * 3_600_000  # 10:00 UTC
HOUR = 3_600_000
CONFIG = HistoryConfig(services=12, days=3, seed=1, end_date=dt.date(2026, 11, 20))


def rec(
    version: str,
    text: str,
    at: int,
    count: int = 1,
    last: int | None = None,
    event_type: str = "NORMAL",
    service: str = "v2-a",
) -> EventRecord:
    return EventRecord(
        record_id=f"{service}/{version}/{text}",
        service_id=service,
        service_version_id=version,
        event_type=event_type,
        event_info=text,
        event_info_cn="事件",
        event_count=count,
        create_at=at,
        update_at=at if last is None else last,
    )


WAIT = "Insufficient resources. Wait until idle resources are sufficient."
UNKNOWN = "custom hook executed: warmup"


def succeeded_version(start: int) -> list[EventRecord]:
    """A version that deploys model "m 1.0" and runs, waiting 3 times for resources, then emits
    an unknown text 4 times after it runs."""
    return [
        rec("A1", "start to deploy service", start),
        rec("A1", "preparing environment", start + 1_000),
        rec("A1", "[m 1.0] prepare environment success", start + 5_000),
        rec("A1", WAIT, start + 5_500, count=3, last=start + 5_900, event_type="WARNING"),
        rec("A1", "[m 1.0] schedule resource success", start + 6_000),
        rec("A1", "[m 1.0] pulling model image", start + 7_000),
        rec("A1", "[m 1.0] pull image success", start + 60_000),
        rec("A1", "[m 1.0] starting model", start + 61_000),
        rec("A1", "[m 1.0] start model success", start + 120_000),
        rec("A1", "service is running", start + 121_000),
        rec("A1", UNKNOWN, start + 200_000, count=4, last=start + 900_000),
    ]


def hand_written() -> list[EventRecord]:
    return [
        # the version running before the data begins: no start record, no attempt (even with a
        # terminal text)
        rec("A0", "service is running", T0 - 500),
        *succeeded_version(T0),
        # fails pulling its image
        rec("A2", "start to deploy service", T0 + 3 * HOUR),
        rec("A2", "preparing environment", T0 + 3 * HOUR + 1_000),
        rec("A2", "[m 1.0] prepare environment success", T0 + 3 * HOUR + 5_000),
        rec("A2", "[m 1.0] schedule resource success", T0 + 3 * HOUR + 6_000),
        rec("A2", "[m 1.0] pulling model image", T0 + 3 * HOUR + 7_000),
        rec(
            "A2",
            "[m 1.0] pull image failed: image not found",
            T0 + 3 * HOUR + 60_000,
            event_type="ABNORMAL",
        ),
        # no terminal, then a newer version: superseded by it; the newer one in progress
        rec("A3", "start to deploy service", T0 + 5 * HOUR),
        rec("A3", "preparing environment", T0 + 5 * HOUR + 1_000),
        rec("A4", "start to deploy service", T0 + 6 * HOUR),
    ]


def attempts(engine: Engine) -> dict[int, Any]:
    rows = queries.rows(
        engine,
        "select attempt_start, generation, outcome, attempt_end, failure_phase, failure_cause,"
        " cause_category, models, time_to_running_ms, events, unknown_events"
        " from analytics.deployment_attempts where service_id = 'v2-a' order by attempt_start",
    )
    return {r.attempt_start: tuple(r[1:]) for r in rows}


def test_hand_written_records_give_the_expected_attempts_phases_and_days(
    engine: Engine,
) -> None:
    store_records(engine, hand_written())
    refresh = rebuild_marts(engine, [DAY])
    assert refresh.queued_days == (DAY,)
    m = ["m 1.0"]
    assert attempts(engine) == {
        T0: ("v2", "succeeded", T0 + 121_000, None, None, None, m, 121_000, 12, 0),
        T0 + 3 * HOUR: (
            "v2", "failed", T0 + 3 * HOUR + 60_000, "image_pulling", "image_pull", "image_pull",
            m, None, 6, 0,
        ),
        T0 + 5 * HOUR: ("v2", "superseded", T0 + 6 * HOUR, None, None, None, [], None, 2, 0),
        T0 + 6 * HOUR: ("v2", "in_progress", None, None, None, None, [], None, 1, 0),
    }  # fmt: skip
    phases = queries.rows(
        engine,
        "select phase, phase_start, phase_end, status, generation from analytics.deployment_phases"
        " where attempt_start = :start order by phase_start, phase",
        start=T0,
    )
    assert [tuple(p) for p in phases] == [
        ("environment_preparation", T0 + 1_000, T0 + 5_000, "succeeded", "v2"),
        ("resource_scheduling", T0 + 5_000, T0 + 6_000, "succeeded", "v2"),
        ("image_pulling", T0 + 7_000, T0 + 60_000, "succeeded", "v2"),
        ("model_startup", T0 + 61_000, T0 + 120_000, "succeeded", "v2"),
    ]
    daily = queries.one(
        engine,
        "select generation, attempts, succeeded, failed, superseded, in_progress, success_rate"
        " from analytics.deployment_outcomes_daily where service_id = 'v2-a'",
    )
    assert tuple(daily) == ("v2", 4, 1, 1, 1, 1, 0.5)
    causes = queries.rows(
        engine,
        "select generation, failure_cause, cause_category, failures"
        " from analytics.deployment_failure_causes_daily",
    )
    assert [tuple(c) for c in causes] == [("v2", "image_pull", "image_pull", 1)]
    # the unknown text: its 4 occurrences, from its first to its last
    unknown = queries.one(
        engine,
        "select generation, event_type, events, first_occurred_at, last_occurred_at"
        " from analytics.unclassified_event_texts_daily where event_info = :text",
        text=UNKNOWN,
    )
    assert tuple(unknown[:3]) == ("v2", "normal", 4)
    assert unknown.first_occurred_at.timestamp() * 1000 == T0 + 200_000
    assert unknown.last_occurred_at.timestamp() * 1000 == T0 + 900_000
    # coverage: a row per generation; v2 records weigh their counts (26 occurrences, 4 unknown)
    coverage = queries.rows(
        engine,
        "select generation, events, events_explained, attempts, failures"
        " from analytics.event_text_coverage_daily where event_date = :day order by generation",
        day=DAY,
    )
    assert [tuple(c) for c in coverage] == [("v1", 0, 0, 0, 0), ("v2", 26, 22, 4, 1)]


def test_a_late_record_and_a_growing_count_follow_through_the_queue(engine: Engine) -> None:
    """A v2 load queues the create_at day of each record it inserts or moves forward; a rebuild
    of any later day takes the queued pair: a late failure record of version A3 (created after A4
    started: it still belongs to A3) fails A3, and a count that grew changes the events."""
    store_records(engine, hand_written())
    rebuild_marts(engine, [DAY])
    late_failure = rec("A3", "deploy service failed: deployment timeout", T0 + 6 * HOUR + 1_000)
    waited_more = rec("A1", WAIT, T0 + 5_500, count=5, last=T0 + 9_000, event_type="WARNING")
    assert store_records(engine, [late_failure, waited_more, *hand_written()]) == 2
    next_day = DAY + dt.timedelta(days=1)
    refresh = rebuild_marts(engine, [next_day])
    assert refresh.queued_days == (DAY,)
    got = attempts(engine)
    # no phase names a model, so none is open: the failure is charged to the deployment
    assert got[T0 + 5 * HOUR][1:5] == ("failed", T0 + 6 * HOUR + 1_000, "deployment", "timeout")
    assert got[T0 + 6 * HOUR][1] == "in_progress"
    assert got[T0][8] == 14  # 12 events, the wait now 5 times
    assert queries.scalar(engine, "select count(*) from mart_rebuild_queue") == 0
    # rebuilding again changes nothing
    before = snapshot(engine)
    rebuild_marts(engine, [DAY, next_day])
    assert snapshot(engine) == before


# One version per case: its records as (text, ms after the start, count), in any order (a
# version's records are ordered by create_at, not by how they arrive), and the attempt expected:
# (outcome, attempt_end - start, failure_phase, cause_category, events, unknown_events); None: no
# attempt.
START, CONSOLE_START = "start to deploy service", "The service starts to deploy."
VERSION_CASES: dict[str, tuple[list[tuple[str, int, int]], Any]] = {
    "console success after waiting": (
        [(CONSOLE_START, 0, 1), (WAIT, 10, 7), ("Service svc-1 started.", 50, 1)],
        ("succeeded", 50, None, None, 9, 0),
    ),
    "console scheduling failure": (
        [
            (
                "Insufficient cpu. The scheduling failed. Supplementary information: 0/3 nodes",
                40,
                1,
            ),
            (CONSOLE_START, 0, 1),
        ],
        ("failed", 40, "resource_scheduling", "insufficient_resources", 2, 0),
    ),
    "console failure with no phase, timeout": (
        [(CONSOLE_START, 0, 1), ("Service deployment timed out. Error: 30 min", 90, 1)],
        ("failed", 90, "deployment", "timeout", 2, 0),
    ),
    "the first terminal decides; a restart after it is runtime": (
        [
            (START, 0, 1),
            ("service is running", 20, 1),
            ("[m 1.0] instance restarted unexpectedly", 30, 12),
            ("deploy service failed: crash loop", 40, 1),
        ],
        ("succeeded", 20, None, None, 2, 0),
    ),
    "unknown texts before the terminal count, with their occurrences": (
        [(START, 0, 1), (UNKNOWN, 5, 3), ("service is running", 20, 1), (UNKNOWN + "!", 30, 2)],
        ("succeeded", 20, None, None, 2, 3),
    ),
    "a terminal in the start's millisecond belongs to the version": (
        [(START, 0, 1), ("deploy service failed: quota", 0, 1)],
        ("failed", 0, "deployment", "unknown", 2, 0),
    ),
    "no start record: no attempt": (
        [("preparing environment", 5, 1), ("service is running", 20, 1)],
        None,
    ),
}


@pytest.mark.parametrize("case", list(VERSION_CASES), ids=list(VERSION_CASES))
def test_one_version_gives_the_expected_attempt(engine: Engine, case: str) -> None:
    records, expected = VERSION_CASES[case]
    store_records(engine, [rec("V", text, T0 + at, count=n) for text, at, n in records])
    rebuild_marts(engine, [DAY])
    got = attempts(engine)
    if expected is None:
        assert got == {}
        return
    outcome, end, phase, category, events, unknown = expected
    assert got == {
        T0: ("v2", outcome, T0 + end, phase, got[T0][4], category, got[T0][6], got[T0][7],
             events, unknown),
    }  # fmt: skip


# --- the simulator's histories as records ---------------------------------------------------------


@pytest.fixture(scope="module", params=families.VOCABULARIES)
def history(request: pytest.FixtureRequest) -> History:
    return generate_history(dataclasses.replace(CONFIG, vocabulary=request.param))


def v2_services(history: History, every: int) -> set[str]:
    """Every `every`-th service of the history is a new-version one (every=1: all)."""
    return {s.service_id for i, s in enumerate(history.services) if i % every == 0}


def records_as_of(history: History, services: set[str], as_of_ms: int) -> list[EventRecord]:
    return [
        r
        for service_id in sorted(services)
        for r in event_records(service_id, history.events_by_service[service_id], as_of_ms)
    ]


def load_mixed_day(history: History, engine: Engine, index: int, v2: set[str]) -> None:
    """Day `index` as a run of both generations would load it: the v1 services' events of the
    day, and the v2 services' records as the API shows them at the day's end (a record created
    earlier whose count grew that day comes again, and is queued again)."""
    window = day_window(history, index)
    v1 = dataclasses.replace(
        history,
        events_by_service={s: e for s, e in history.events_by_service.items() if s not in v2},
    )
    load_day(engine, v1, window)
    store_records(engine, records_as_of(history, v2, window.end_ms - 1))


def generations(engine: Engine) -> dict[str, set[str]]:
    rows = queries.rows(
        engine, "select distinct service_id, generation from analytics.deployment_attempts"
    )
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r.generation, set()).add(r.service_id)
    return out


@pytest.mark.parametrize("every", [1, 2], ids=["v2-only", "mixed"])
def test_each_loaded_day_gives_the_truth_as_of_its_end(
    engine: Engine, history: History, every: int
) -> None:
    v2 = v2_services(history, every)
    for index in range(CONFIG.days):
        load_mixed_day(history, engine, index, v2)
        window = day_window(history, index)
        rebuild_marts(engine, [utc_date(window.start_ms)])
        assert_marts_equal_truth(engine, truth_as_of(history, window.end_ms - 1))
    assert_marts_equal_truth(engine, history.attempts)
    by_generation = generations(engine)
    assert by_generation["v2"] == v2
    assert by_generation.get("v1", set()) == {s.service_id for s in history.services} - v2


def test_rerun_and_out_of_order_rebuilds_stay_exact(engine: Engine, history: History) -> None:
    v2 = v2_services(history, 2)
    for index in reversed(range(CONFIG.days)):
        load_mixed_day(history, engine, index, v2)
        rebuild_marts(engine, [utc_date(day_window(history, index).start_ms)])
    assert_marts_equal_truth(engine, history.attempts)
    before = snapshot(engine)
    for index in [1, 2, 0, 1]:
        rebuild_marts(engine, [utc_date(day_window(history, index).start_ms)])
    assert snapshot(engine) == before


def test_v1_events_and_v2_records_of_one_timeline_give_the_same_rows(
    engine: Engine, history: History
) -> None:
    """Every service twice: as v1 events, and as v2 records under another id. Apart from the
    generation, the attempts (events counted, unknown texts, durations included), phases and
    daily rows are the same."""
    copies = {f"v2-{s}": events for s, events in history.events_by_service.items()}
    for index in range(CONFIG.days):
        load_day(engine, history, day_window(history, index))
    store_records(
        engine,
        [r for s, events in copies.items() for r in event_records(s, events)],
    )
    last = utc_date(day_window(history, CONFIG.days - 1).start_ms)
    rebuild_marts(engine, [last])
    columns = (
        "attempt_start, outcome, attempt_end, failure_phase, failure_reason, failure_cause,"
        " cause_category, failure_detail, models, time_to_running_ms, duration_ms, events,"
        " unknown_events"
    )

    def rows_of(generation: str) -> set[tuple[Any, ...]]:
        stored = queries.rows(
            engine,
            f"select replace(service_id, 'v2-', '') as service_id, {columns}"
            " from analytics.deployment_attempts where generation = :g",
            g=generation,
        )
        return {(*r[:9], tuple(r[9]), *r[10:]) for r in stored}

    v1_rows = rows_of("v1")
    assert v1_rows and rows_of("v2") == v1_rows
    daily = (
        "select replace(service_id, 'v2-', ''), attempt_date, attempts, succeeded, failed,"
        " superseded, in_progress from analytics.deployment_outcomes_daily where generation = :g"
    )
    v1_daily = set(queries.rows(engine, daily, g="v1"))
    assert v1_daily and set(queries.rows(engine, daily, g="v2")) == v1_daily
    phases = (
        "select replace(service_id, 'v2-', ''), attempt_start, model, phase, phase_start,"
        " phase_end, status from analytics.deployment_phases where generation = :g"
    )
    assert set(queries.rows(engine, phases, g="v2")) == set(queries.rows(engine, phases, g="v1"))


def test_the_report_counts_both_generations_and_shows_the_split(engine: Engine) -> None:
    """One v1 service (a success) and the hand-written v2 one: the report's days count both, its
    v2 columns the v2 share; the failing services say their generation; the coverage's stored
    events include the v2 records' occurrences."""
    store_records(engine, hand_written())
    with WindowLoad(engine, TimeWindow(T0 - 10 * HOUR, T0 + 14 * HOUR)) as load:
        add_events(
            load,
            [
                ServiceEvent("v1-a", T0, "normal", "start to deploy service"),
                ServiceEvent("v1-a", T0 + 1_000, "normal", "deploy service failed: no quota"),
            ],
        )
        load.commit()
    rebuild_marts(engine, [DAY])
    data = read_report_data(engine, DAY, DAY)
    [day] = data.outcomes
    assert (day.attempts, day.succeeded, day.failed, day.v2_attempts) == (5, 1, 2, 4)
    assert day.success_rate == pytest.approx(1 / 3) and day.v2_success_rate == 0.5
    assert {(s.service_id, s.generation) for s in data.failing_services} == {
        ("v1-a", "v1"),
        ("v2-a", "v2"),
    }
    [coverage] = data.coverage
    assert (coverage.events, coverage.unknown_text_events) == (2 + 26, 4)
    html = render_html(data, dt.datetime.now(dt.UTC), "test", 0.99)
    assert "of them new-version (v2)" in html
    assert 'data-col="v2_attempts" data-value="4"' in html
    assert 'data-col="generation" data-value="v2"' in html


# --- end to end over real HTTP -------------------------------------------------------------------

E2E_HISTORY = ["--services", "12", "--days", "3", "--seed", "11", "--end-date", "2026-11-20"]
E2E_FAULTS = [
    "--fault-rate", "0.2",
    "--fault-kinds", "throttle,error_json,drop,truncate",
    "--retry-after-s", "0", "--token-ttl-s", "3",
]  # fmt: skip


@pytest.mark.parametrize(
    ("api", "vocabulary", "faults"),
    [("mixed", "mix", []), ("v2", "console", E2E_FAULTS)],
    ids=["mixed", "v2-only-faults"],
)
def test_a_run_over_http_gives_marts_equal_to_the_truth_of_both_generations(
    database_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    api: str,
    vocabulary: str,
    faults: list[str],
) -> None:
    """`modelarts-etl run` against the simulator serving both generations (or v2 only, under
    faults): the v1 loader and the v2 loader queue their days, the marts follow, and they equal
    the simulator's truth, each service's attempts under its own generation."""
    args = [*E2E_HISTORY, "--api", api, "--vocabulary", vocabulary, *faults]
    with running_simulator(args) as info:
        monkeypatch.delenv(settings.MODELARTS_TOKEN, raising=False)
        for key, value in simulator_env(info, database_url).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
        (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        days = simulator_days(info)
        assert main(["run", "--start", days[0], "--end", days[-1]]) == 0
        truth = served_truth(info)
    assert_marts_equal_truth(engine, truth)
    stored = queries.rows(
        engine,
        "select distinct attempts.service_id, attempts.generation, services.generation"
        " from analytics.deployment_attempts as attempts"
        " left join services using (service_id)",
    )
    assert stored and all(r[1] == r[2] for r in stored)
    by_generation = {r[1] for r in stored}
    assert by_generation == ({"v1", "v2"} if api == "mixed" else {"v2"})
    assert queries.scalar(engine, "select count(*) from mart_rebuild_queue") == 0
