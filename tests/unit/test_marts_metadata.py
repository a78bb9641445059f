"""The markdown a person reads on each materialization of the deployment marts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pipelines.assets.deployments import BAR_WIDTH, causes_table, trend_table
from pipelines.warehouse.marts import TrendDay, consecutive_runs, day_parameters
from pipelines.windows import TimeWindow


@pytest.mark.parametrize(
    ("rate", "filled"),
    [(1.0, BAR_WIDTH), (0.5, BAR_WIDTH // 2), (0.0, 0), (None, None)],
)
def test_trend_rows_show_rate_bar_and_p95_minutes(rate: float | None, filled: int | None) -> None:
    day = TrendDay(date(2026, 11, 19), 4, 2, 2, rate, 90_000.0 if rate else None)
    table = trend_table([day], date(2026, 11, 19))
    row = table.splitlines()[-1]
    assert row.startswith("| 2026-11-19 | 4 | 2 | 2 |")
    if filled is None:
        assert "█" not in row and "░" not in row
    else:
        assert row.count("█") == filled and row.count("░") == BAR_WIDTH - filled
    assert ("1.5 min" in row) == bool(rate)


def test_empty_tables_say_so() -> None:
    assert "(no attempts)" in trend_table([], date(2026, 11, 19))
    assert "(no failures)" in causes_table([])


def test_causes_table_lists_rows_in_given_order() -> None:
    table = causes_table([("timeout", "model_startup", 3, 2), ("other", "deployment", 1, 1)])
    assert table.splitlines()[2:] == [
        "| timeout | model_startup | 3 | 2 |",
        "| other | deployment | 1 | 1 |",
    ]


def test_day_parameters_bound_the_utc_day() -> None:
    start = 1_795_046_400_000  # 2026-11-19T00:00:00Z
    params = day_parameters(TimeWindow(start, start + 86_400_000))
    assert params["day"] == date(2026, 11, 19)
    assert params["day_start"] == datetime(2026, 11, 19, tzinfo=UTC)
    assert params["day_end"] == datetime(2026, 11, 20, tzinfo=UTC)


D = date(2026, 11, 1)


def _days(*offsets: int) -> list[date]:
    return [date.fromordinal(D.toordinal() + o) for o in offsets]


@pytest.mark.parametrize(
    ("days", "max_days", "runs"),
    [
        (_days(0), 31, [_days(0)]),
        (_days(2, 0, 1, 1), 31, [_days(0, 1, 2)]),  # unordered, repeated
        (_days(0, 1, 3, 4, 30), 31, [_days(0, 1), _days(3, 4), _days(30)]),
        (_days(*range(5)), 2, [_days(0, 1), _days(2, 3), _days(4)]),  # capped
        ([], 31, []),
    ],
)
def test_consecutive_days_make_one_pass_each_run(
    days: list[date], max_days: int, runs: list[list[date]]
) -> None:
    assert consecutive_runs(days, max_days) == runs
