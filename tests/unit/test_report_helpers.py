"""The report's pure helpers: default ranges, duration units, and chart SVGs that can share a
page (ids unique, nothing external)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.report import charts
from pipelines.report.command import report_range
from pipelines.report.queries import FailureCount, LoadDay

YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, (YESTERDAY - timedelta(days=13), YESTERDAY)),
        (None, date(2026, 11, 20), (date(2026, 11, 7), date(2026, 11, 20))),
        (date(2026, 11, 1), date(2026, 11, 3), (date(2026, 11, 1), date(2026, 11, 3))),
        (date(2026, 1, 1), None, (date(2026, 1, 1), date(2026, 1, 14))),
        # a --start near today: the range stops at yesterday, never before its start
        (YESTERDAY - timedelta(days=2), None, (YESTERDAY - timedelta(days=2), YESTERDAY)),
        (YESTERDAY + timedelta(days=5), None, (YESTERDAY + timedelta(days=5),) * 2),
        # reported to the operator by the CLI, not corrected
        (date(2026, 11, 5), date(2026, 11, 1), (date(2026, 11, 5), date(2026, 11, 1))),
    ],
)
def test_report_range(start: date | None, end: date | None, expected: tuple[date, date]) -> None:
    assert report_range(start, end) == expected


@pytest.mark.parametrize(
    ("values_ms", "unit"),
    [
        ([], "ms"),
        ([10.0, 15.0], "ms"),
        ([1999.0], "ms"),
        ([2000.0], "s"),
        ([119_999.0], "s"),
        ([120_000.0, 5.0], "min"),
    ],
)
def test_duration_unit(values_ms: list[float], unit: str) -> None:
    assert charts.duration_unit(values_ms)[0] == unit


def _loads(flags: list[bool]) -> list[LoadDay]:
    return [
        LoadDay(date(2026, 11, 1) + timedelta(days=i), f, None, 10 * f, 0, 0, None)
        for i, f in enumerate(flags)
    ]


def test_charts_on_one_page_have_distinct_ids_and_reference_only_their_own() -> None:
    failures = [FailureCount("image_pull", 3, 2), FailureCount("x" * 80, 1, 1)]
    svgs = [
        charts.failures_chart("causes", failures, "by cause").svg,
        charts.failures_chart("phases", failures, "by phase").svg,
        charts.loads_chart(_loads([False, True, True, False, False, False, True])).svg,
    ]
    ids = [i for svg in svgs for i in re.findall(r'\bid="([^"]+)"', svg)]
    assert len(ids) == len(set(ids)) > 10
    for name, svg in zip(("causes", "phases", "loads"), svgs, strict=True):
        own = set(re.findall(r'\bid="([^"]+)"', svg))
        references = re.findall(r'(?:href="#|url\(#)([^")]+)', svg)
        assert references and set(references) <= own, name
        assert svg.startswith("<svg") and "<metadata" not in svg
        assert not re.search(r"(?:href|src)=\"(?:https?:|//)", svg)
        assert 'width="' not in svg[: svg.index(">")]  # sized by the page


def test_bars_are_named_after_the_rows_of_their_table() -> None:
    failures = [FailureCount("a", 5, 1), FailureCount("b", 3, 1), FailureCount("c", 1, 1)]
    svg = charts.failures_chart("causes", failures, "by cause").svg
    assert re.findall(r'id="causes-bar-failures-(\d+)"', svg) == ["2", "1", "0"]
