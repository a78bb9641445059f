"""The retention horizon at UTC midnight, and the catch-up plan over it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines import catchup, run_tags
from pipelines.catchup import DayRange, RunDays, plan_catchup, sensor_days, tally_runs
from pipelines.horizon import Horizon, split_days

MIDNIGHT = datetime(2026, 12, 7, tzinfo=UTC)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("now", "retention", "first_recoverable"),
    [
        # at midnight exactly, the day that ended `retention` days ago is wholly gone
        (MIDNIGHT, 3, date(2026, 12, 4)),
        (MIDNIGHT - TICK, 3, date(2026, 12, 3)),  # its last microsecond is still there
        (MIDNIGHT + TICK, 3, date(2026, 12, 4)),
        (MIDNIGHT, 30, date(2026, 11, 7)),
        (MIDNIGHT - TICK, 30, date(2026, 11, 6)),
        (MIDNIGHT + timedelta(hours=23, minutes=59), 30, date(2026, 11, 7)),
        (MIDNIGHT, 1, date(2026, 12, 6)),
        # an aware time in another zone is the same instant
        (datetime.fromisoformat("2026-12-07T01:00:00+01:00"), 3, date(2026, 12, 4)),
        (datetime.fromisoformat("2026-12-07T00:59:59+01:00"), 3, date(2026, 12, 3)),
    ],
)
def test_the_first_recoverable_day_at_utc_midnight(
    now: datetime, retention: int, first_recoverable: date
) -> None:
    horizon = Horizon(now, retention)
    assert horizon.first_recoverable_day == first_recoverable
    assert horizon.unrecoverable(first_recoverable - timedelta(days=1))
    assert not horizon.unrecoverable(first_recoverable)
    # the day before the first recoverable one was lost at or before now, that one is not yet
    assert horizon.time_left(first_recoverable - timedelta(days=1)) <= timedelta(0)
    assert horizon.time_left(first_recoverable) > timedelta(0)


def test_a_range_splits_at_the_horizon() -> None:
    horizon = Horizon(MIDNIGHT, 3)
    beyond, kept = split_days(date(2026, 12, 1), date(2026, 12, 6), horizon)
    assert beyond == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    assert kept == date(2026, 12, 4)
    assert split_days(date(2026, 12, 1), date(2026, 12, 2), horizon) == (
        [date(2026, 12, 1), date(2026, 12, 2)],
        None,
    )
    assert split_days(date(2026, 12, 5), date(2026, 12, 6), horizon) == ([], date(2026, 12, 5))


def days(first: str, last: str) -> list[date]:
    return DayRange(date.fromisoformat(first), date.fromisoformat(last), 1).days()


def test_consecutive_missing_days_are_one_range_oldest_first() -> None:
    missing = days("2026-11-10", "2026-11-12") + days("2026-11-20", "2026-11-20")
    plan = plan_catchup(missing, RunDays(), slots=2)
    assert [(r.first.isoformat(), r.last.isoformat(), r.attempt) for r in plan.requests] == [
        ("2026-11-10", "2026-11-12", 1),
        ("2026-11-20", "2026-11-20", 1),
    ]
    assert plan.given_up == [] and plan.waiting == []


def test_no_more_runs_in_flight_than_the_pool_allows() -> None:
    missing = days("2026-11-01", "2026-11-01") + days("2026-11-03", "2026-11-03")
    missing += days("2026-11-05", "2026-11-06")
    plan = plan_catchup(missing, RunDays(catchup_in_flight=1), slots=2)
    assert [r.first for r in plan.requests] == [date(2026, 11, 1)]
    assert plan.waiting == [date(2026, 11, 3), *days("2026-11-05", "2026-11-06")]
    assert plan_catchup(missing, RunDays(catchup_in_flight=2), slots=2).requests == []


def test_a_day_a_run_ended_without_is_retried_alone_then_given_up() -> None:
    missing = days("2026-11-10", "2026-11-13")
    failing = date(2026, 11, 12)
    plan = plan_catchup(missing, RunDays(ended={failing: 1}), slots=5)
    assert [(r.first, r.last, r.attempt) for r in plan.requests] == [
        (date(2026, 11, 10), date(2026, 11, 11), 1),
        (failing, failing, 2),
        (date(2026, 11, 13), date(2026, 11, 13), 1),
    ]
    given_up = plan_catchup(missing, RunDays(ended={failing: catchup.MAX_ATTEMPTS}), slots=5)
    assert failing not in {d for r in given_up.requests for d in r.days()}
    assert given_up.given_up == [failing]


def test_days_of_runs_in_flight_are_left_to_them() -> None:
    runs = tally_runs(
        [
            (
                {
                    run_tags.PARTITION_RANGE_START: "2026-11-10",
                    run_tags.PARTITION_RANGE_END: "2026-11-11",
                    run_tags.TRIGGER: catchup.TRIGGER,
                },
                True,
            ),
            ({run_tags.PARTITION: "2026-11-12"}, False),
            ({run_tags.PARTITION: "2026-11-12"}, False),
            ({}, False),  # a run without partitions covers no day
        ]
    )
    assert runs.in_flight == frozenset(days("2026-11-10", "2026-11-11"))
    assert runs.ended == {date(2026, 11, 12): 2}
    assert runs.catchup_in_flight == 1
    plan = plan_catchup(days("2026-11-10", "2026-11-12"), runs, slots=2)
    assert [(r.first, r.attempt) for r in plan.requests] == [(date(2026, 11, 12), 3)]


def test_the_sensor_leaves_the_latest_nightly_tick_its_days_for_a_while() -> None:
    tick = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)
    nightly = (date(2026, 12, 4), date(2026, 12, 6))
    start = date(2026, 11, 7)
    soon = sensor_days(start, date(2024, 1, 1), tick, nightly, tick + timedelta(minutes=1))
    assert soon == (start, date(2026, 12, 3))
    later = sensor_days(start, date(2024, 1, 1), tick, nightly, tick + timedelta(hours=1))
    assert later == (start, date(2026, 12, 6))
    # partitions that begin inside the horizon bound it
    assert sensor_days(start, date(2026, 12, 1), tick, nightly, tick + timedelta(hours=1)) == (
        date(2026, 12, 1),
        date(2026, 12, 6),
    )
