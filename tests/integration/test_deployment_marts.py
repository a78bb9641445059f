"""Simulator histories with known truth -> loader -> marts, compared with the truth exactly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pytest
from sqlalchemy import Engine

from pipelines.simulator import families
from pipelines.simulator.history import HistoryConfig, generate_history, truth_as_of
from pipelines.simulator.models import AttemptTruth, History, PhaseTruth
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import rebuild_marts
from pipelines.windows import TimeWindow
from tests import queries
from tests.integration.conftest import add_events

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
CONFIG = HistoryConfig(services=12, days=3, seed=1, end_date=dt.date(2026, 11, 20))

Row = tuple[Any, ...]


# --- loading ----------------------------------------------------------------------------------


def day_window(history: History, index: int) -> TimeWindow:
    start = history.start_ms + index * DAY_MS
    return TimeWindow(start, start + DAY_MS)


def load_day(engine: Engine, history: History, window: TimeWindow) -> None:
    """Land the history's events of the window through the project's loader."""
    with WindowLoad(engine, window) as load:
        add_events(
            load,
            [
                ServiceEvent(service_id, e.occur_time, e.event_type, e.event_info)
                for service_id, events in history.events_by_service.items()
                for e in events
                if window.contains(e.occur_time)
            ],
        )
        load.commit()


# --- what the marts should hold, from the truth --------------------------------------------------


def vocabulary_failure_phase(attempt: AttemptTruth) -> str | None:
    """docs/VOCABULARY.md: a failure's phase is the phase in progress. The simulator's truth says
    'deployment' for "deploy service failed"; the marts name the latest phase still open. Console
    texts have no phase events: the phase is the one the failure text names, else 'deployment'."""
    if attempt.family == families.CONSOLE and attempt.failure_phase is not None:
        if attempt.failure_phase in families.CONSOLE_NAMED_PHASES:
            return attempt.failure_phase
        return "deployment"
    if attempt.failure_phase != "deployment":
        return attempt.failure_phase
    open_phases = [p for p in attempt.phases if p.status == "in_progress"]
    if not open_phases:
        return "deployment"
    return max(open_phases, key=lambda p: p.start_ms).phase


def observed_models(attempt: AttemptTruth) -> tuple[str, ...]:
    """The models the attempt's events name (the truth lists the planned ones, even unnamed);
    console texts name none."""
    if attempt.family == families.CONSOLE:
        return ()
    seen: dict[str, None] = {}
    for phase in sorted(attempt.phases, key=lambda p: p.start_ms):
        seen.setdefault(phase.model, None)
    assert tuple(seen) == attempt.models[: len(seen)]
    return tuple(seen)


def utc_date(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()


def expected_attempts(truth: list[AttemptTruth]) -> set[Row]:
    return {
        (
            a.service_id,
            a.attempt_start,
            utc_date(a.attempt_start),
            a.outcome,
            a.ended_at_ms,
            vocabulary_failure_phase(a),
            a.failure_reason,
            a.failure_cause,
            a.failure_category,
            observed_models(a),
            a.time_to_running_ms,
        )
        for a in truth
    }


def observed_phases(attempt: AttemptTruth) -> tuple[PhaseTruth, ...]:
    """The phases the attempt's events show: console texts have no phase events."""
    return () if attempt.family == families.CONSOLE else attempt.phases


def expected_phases(truth: list[AttemptTruth]) -> set[Row]:
    return {
        (
            a.service_id,
            a.attempt_start,
            p.model,
            p.phase,
            p.start_ms,
            p.end_ms,
            p.duration_ms,
            p.status,
        )
        for a in truth
        for p in observed_phases(a)
    }


def percentile_cont(values: list[int], fraction: float) -> float | None:
    """Postgres percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected_outcomes_daily(truth: list[AttemptTruth]) -> dict[Row, Row]:
    groups: dict[tuple[dt.date, str], list[AttemptTruth]] = defaultdict(list)
    for a in truth:
        groups[(utc_date(a.attempt_start), a.service_id)].append(a)
    out = {}
    for key, attempts in groups.items():
        n = {o: sum(a.outcome == o for a in attempts) for o in _OUTCOMES}
        decided = n["succeeded"] + n["failed"]
        times = [a.time_to_running_ms for a in attempts if a.time_to_running_ms is not None]
        out[key] = (
            len(attempts),
            *(n[o] for o in _OUTCOMES),
            n["succeeded"] / decided if decided else None,
            percentile_cont(times, 0.5),
            percentile_cont(times, 0.95),
        )
    return out


_OUTCOMES = ("succeeded", "failed", "superseded", "in_progress")


def expected_phase_durations_daily(truth: list[AttemptTruth]) -> dict[Row, Row]:
    groups: dict[tuple[dt.date, str, str], list[Any]] = defaultdict(list)
    for a in truth:
        for p in observed_phases(a):
            groups[(utc_date(a.attempt_start), a.service_id, p.phase)].append(p)
    out = {}
    for key, phases in groups.items():
        done = [p.duration_ms for p in phases if p.status == "succeeded"]
        out[key] = (
            len(phases),
            sum(p.status == "succeeded" for p in phases),
            sum(p.status == "failed" for p in phases),
            sum(p.status == "in_progress" for p in phases),
            percentile_cont(done, 0.5),
            percentile_cont(done, 0.9),
            percentile_cont(done, 0.95),
            max(done) if done else None,
        )
    return out


def expected_failure_causes_daily(truth: list[AttemptTruth]) -> dict[Row, int]:
    out: dict[Row, int] = defaultdict(int)
    for a in truth:
        if a.outcome == "failed":
            key = (utc_date(a.attempt_start), a.service_id, a.failure_cause, a.failure_category)
            out[key] += 1
    return dict(out)


# --- what the marts hold -----------------------------------------------------------------------


def stored_attempts(engine: Engine) -> set[Row]:
    rows = queries.rows(
        engine,
        "select service_id, attempt_start, attempt_date, outcome, attempt_end, failure_phase,"
        " failure_reason, failure_cause, cause_category, models, time_to_running_ms"
        " from analytics.deployment_attempts",
    )
    return {(*r[:9], tuple(r[9]), r[10]) for r in rows}


def stored_phases(engine: Engine) -> set[Row]:
    return set(
        queries.rows(
            engine,
            "select service_id, attempt_start, model, phase, phase_start, phase_end, duration_ms,"
            " status from analytics.deployment_phases",
        )
    )


def stored_daily(engine: Engine, table: str, keys: int) -> dict[Row, Any]:
    columns = {
        "deployment_outcomes_daily": "attempt_date, service_id, attempts, succeeded, failed,"
        " superseded, in_progress, success_rate, p50_time_to_running_ms, p95_time_to_running_ms",
        "deployment_phase_durations_daily": "attempt_date, service_id, phase, phases, succeeded,"
        " failed, in_progress, p50_ms, p90_ms, p95_ms, max_ms",
        "deployment_failure_causes_daily": "attempt_date, service_id, failure_cause,"
        " cause_category, failures",
    }[table]
    rows = queries.rows(engine, f"select {columns} from analytics.{table}")
    out: dict[Row, Any] = {}
    for r in rows:
        value = r[keys:]
        out[r[:keys]] = value[0] if len(value) == 1 else value
    return out


def snapshot(engine: Engine) -> dict[str, set[Row]]:
    """Every mart table's rows without the refresh timestamps."""
    tables = {
        "deployment_attempts": "service_id, attempt_start",
        "deployment_phases": "service_id, attempt_start, model, phase",
        "deployment_outcomes_daily": "attempt_date, service_id",
        "deployment_phase_durations_daily": "attempt_date, service_id, phase",
        "deployment_failure_causes_daily": "attempt_date, service_id, failure_cause",
        "unclassified_event_texts_daily": "event_date, service_id, event_info_md5",
    }
    out = {}
    for table in tables:
        rows = queries.rows(
            engine, f"select to_jsonb(t) - 'refreshed_at' from analytics.{table} as t"
        )
        out[table] = {tuple(sorted((k, repr(v)) for k, v in r[0].items())) for r in rows}
    return out


def _approx_rows(actual: dict[Row, Any], expected: dict[Row, Any]) -> None:
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert len(got) == len(want), key
        for g, w in zip(got, want, strict=True):
            if isinstance(w, float) and g is not None:
                assert g == pytest.approx(w, rel=1e-12), key
            else:
                assert g == w, key


def assert_marts_equal_truth(engine: Engine, truth: list[AttemptTruth]) -> None:
    assert stored_attempts(engine) == expected_attempts(truth)
    assert stored_phases(engine) == expected_phases(truth)
    _approx_rows(
        stored_daily(engine, "deployment_outcomes_daily", 2), expected_outcomes_daily(truth)
    )
    _approx_rows(
        stored_daily(engine, "deployment_phase_durations_daily", 3),
        expected_phase_durations_daily(truth),
    )
    assert stored_daily(engine, "deployment_failure_causes_daily", 4) == (
        expected_failure_causes_daily(truth)
    )


def rebuild(engine: Engine, history: History, days: Iterable[int]) -> None:
    for index in days:
        rebuild_marts(engine, [utc_date(day_window(history, index).start_ms)])


# --- tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=families.VOCABULARIES)
def history(request: pytest.FixtureRequest) -> History:
    """The same history in the reference texts, the console's, and a per-service mix."""
    return generate_history(dataclasses.replace(CONFIG, vocabulary=request.param))


def family_of(history: History, service_index: int) -> str:
    service_id = history.services[service_index].service_id
    return next(a.family for a in history.attempts if a.service_id == service_id)


def test_each_loaded_day_gives_the_truth_as_of_its_end(engine: Engine, history: History) -> None:
    """Day by day: after day d the marts equal the truth as of d's last millisecond; loading
    d+1 closes d's attempts that were in progress at midnight (service 0 crosses it)."""
    crossing = next(a for a in history.attempts if a.service_id == history.services[0].service_id)
    for index in range(CONFIG.days):
        window = day_window(history, index)
        load_day(engine, history, window)
        refresh = rebuild_marts(engine, [utc_date(window.start_ms)])
        assert_marts_equal_truth(engine, truth_as_of(history, window.end_ms - 1))
        if index == 0:
            assert (crossing.service_id, crossing.attempt_start, "in_progress") in {
                (*a[:2], a[3]) for a in stored_attempts(engine)
            }
        if index == 1:
            assert utc_date(crossing.attempt_start) in refresh.affected_days
    assert_marts_equal_truth(engine, history.attempts)
    stored = {a[:2]: a for a in stored_attempts(engine)}
    assert stored[(crossing.service_id, crossing.attempt_start)][3] == "succeeded"
    assert utc_date(crossing.ended_at_ms or 0) > utc_date(crossing.attempt_start)


def test_edge_cases_are_present_and_exact(engine: Engine, history: History) -> None:
    for index in range(CONFIG.days):
        load_day(engine, history, day_window(history, index))
    rebuild(engine, history, range(CONFIG.days))
    assert_marts_equal_truth(engine, history.attempts)
    attempts = stored_attempts(engine)
    outcomes = {a[3] for a in attempts}
    assert outcomes == {"succeeded", "failed", "superseded", "in_progress"}
    if family_of(history, 3) == families.REFERENCE:
        # three models, scheduling closed in the millisecond environment preparation ended
        assert any(len(a[9]) == 3 and a[3] == "succeeded" for a in attempts)
        assert any(
            p[3] == "resource_scheduling" and p[6] == 0 and p[7] == "succeeded"
            for p in stored_phases(engine)
        )
    # the >3 KB failure text is kept verbatim and classified
    long_failures = [a for a in attempts if a[6] and len(a[6].encode()) > 3000]
    assert long_failures and long_failures[0][7] == "model_startup"
    # the unknown text is kept and counted on its day, and broke nothing
    unknown = queries.rows(
        engine, "select event_info, events from analytics.unclassified_event_texts_daily"
    )
    assert unknown == [("custom hook executed: warmup", 1)]


def test_rematerializing_changes_nothing_in_any_order(engine: Engine, history: History) -> None:
    for index in range(CONFIG.days):
        load_day(engine, history, day_window(history, index))
    rebuild(engine, history, range(CONFIG.days))
    before = snapshot(engine)
    rebuild(engine, history, [1, 2, 0, 1])
    assert snapshot(engine) == before


def test_days_loaded_out_of_order_converge_to_the_truth(engine: Engine, history: History) -> None:
    for index in reversed(range(CONFIG.days)):
        window = day_window(history, index)
        load_day(engine, history, window)
        rebuild_marts(engine, [utc_date(window.start_ms)])
    assert_marts_equal_truth(engine, history.attempts)


def test_a_range_is_one_pass_and_takes_the_queued_days_with_it(
    engine: Engine, history: History
) -> None:
    """The loads queue their (service, day) pairs; a rebuild of the last day alone takes the
    queued days before it into the same pass and ends with the truth and an empty queue."""
    for index in range(CONFIG.days):
        load_day(engine, history, day_window(history, index))
    last = utc_date(day_window(history, CONFIG.days - 1).start_ms)
    refresh = rebuild_marts(engine, [last])
    assert refresh.passes == 1
    assert refresh.queued_days == tuple(
        utc_date(day_window(history, i).start_ms) for i in range(CONFIG.days)
    )
    assert_marts_equal_truth(engine, history.attempts)
    assert queries.rows(engine, "select count(*) from mart_rebuild_queue") == [(0,)]
    again = rebuild_marts(engine, [last])
    assert again.queued_days == () and again.events_read < refresh.events_read
    # the whole range at once gives the same rows
    before = snapshot(engine)
    everything = rebuild_marts(
        engine, [utc_date(day_window(history, i).start_ms) for i in range(3)]
    )
    assert everything.passes == 1 and everything.events_read == refresh.events_read
    assert snapshot(engine) == before
