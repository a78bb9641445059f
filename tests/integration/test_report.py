"""The deployment-health report, rendered from simulator data loaded through Dagster, opened in
headless Chromium: it loads nothing from the network and logs no error, every chart has drawn
marks whose sizes follow the figures beside them, and those figures equal the marts (queried here
independently of sql/report/). The asset of the nightly job writes the same report."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from dagster import DagsterInstance, materialize
from psycopg import sql

from pipelines import settings
from pipelines.assets.report import deployment_report
from pipelines.definitions import build_definitions, build_resources
from pipelines.report.browser import CHROMIUM_FLAGS, find_chromium
from pipelines.report.build import write_report
from pipelines.simulator.process import SimulatorInfo, running_simulator
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.embedded import ensure_database
from pipelines.warehouse.migrations import apply_migrations
from pipelines.windows import day_start_ms
from tests.integration.conftest import SIM_ARGS, simulator_days, simulator_env
from tests.integration.test_deployment_assets import ASSETS, MART_KEYS

pytestmark = pytest.mark.integration

CHARTS = {"outcomes", "causes", "phases", "durations", "services", "coverage", "loads"}
LATE_EVENTS = 3


@dataclass(frozen=True)
class Warehouse:
    database_url: str
    data_dir: Path
    days: list[date]  # the simulator's days, all loaded
    extra_day: date  # loaded after the simulator's history: a day with data and no attempts
    report_metadata: dict[str, Any]


def _materialize(selection: list[str], day: str, instance: DagsterInstance) -> None:
    result = materialize(
        [*ASSETS, deployment_report],
        selection=selection,
        partition_key=day,
        instance=instance,
        resources=build_resources(),
    )
    assert result.success


@pytest.fixture(scope="module")
def warehouse(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The simulator's 3 days loaded through Dagster with their marts, late events caught for the
    middle day, a loaded day without events after them, and the report asset materialized."""
    name = f"test_report_{uuid.uuid4().hex[:10]}"
    database_url = ensure_database(pg_admin_url, name)
    owner = create_warehouse_engine(database_url)
    apply_migrations(owner)  # the owner's `modelarts-etl migrate`: a run never migrates
    owner.dispose()
    data_dir = tmp_path_factory.mktemp("report-data")
    with running_simulator(SIM_ARGS) as info, pytest.MonkeyPatch.context() as env:
        env.delenv(settings.MODELARTS_TOKEN, raising=False)
        for key, value in {
            **simulator_env(info, database_url),
            settings.DATA_DIR: str(data_dir),
        }.items():
            env.setenv(key, value)
        instance = DagsterInstance.ephemeral()
        assert materialize(
            ASSETS, selection=["services"], instance=instance, resources=build_resources()
        ).success
        days = [date.fromisoformat(d) for d in simulator_days(info)]
        extra_day = days[-1] + timedelta(days=1)
        for day in [*days, extra_day]:
            _materialize(["service_events", *MART_KEYS], day.isoformat(), instance)
        _post_late_events(info, days[1])
        _materialize(["service_events", *MART_KEYS], days[1].isoformat(), instance)
        report = materialize(
            [*ASSETS, deployment_report],
            selection=["deployment_report"],
            partition_key=extra_day.isoformat(),
            instance=instance,
            resources=build_resources(),
        )
        assert report.success
        materialization = report.asset_materializations_for_node("deployment_report")[0]
        metadata = {k: v.value for k, v in materialization.metadata.items()}
    yield Warehouse(database_url, data_dir, days, extra_day, metadata)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def _post_late_events(info: SimulatorInfo, day: date) -> None:
    """Events of an already loaded day that the API serves only now: a rerun catches them."""
    service_id = requests.get(f"{info.url}/_sim/truth", timeout=30).json()[0]["service_id"]
    start = day_start_ms(day)
    events = [
        {
            "occur_time": start + 23 * 3_600_000 + i,
            "event_type": "normal",
            "event_info": f"custom hook executed: late check {i}",
        }
        for i in range(LATE_EVENTS)
    ]
    answer = requests.post(
        f"{info.url}/_sim/events", json={"service_id": service_id, "events": events}, timeout=30
    )
    assert answer.status_code < 300, answer.text


# --- the marts, queried here on their own ---------------------------------------------------


def _query(url: str, statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(statement, params).fetchall()]


def _percentile_cont(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected_tables(url: str, first: date, last: date) -> dict[str, list[dict[str, Any]]]:
    """The figures each table of the report must show, from the marts and the raw tables."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    span = {"first": first, "last": last}
    loaded_days = {
        day
        for start_ms, end_ms in _query(
            url,
            "select window_start_ms, window_end_ms from load_batches where status = 'succeeded'",
            {},
        )
        for day in days
        if start_ms <= day_start_ms(day) and end_ms >= day_start_ms(day + timedelta(days=1))
    }
    outcome: defaultdict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for row in _query(
        url,
        "select attempt_date, attempts, succeeded, failed, superseded, in_progress"
        " from analytics.deployment_outcomes_daily"
        " where attempt_date between %(first)s and %(last)s",
        span,
    ):
        for i, n in enumerate(row[1:]):
            outcome[row[0]][i] += n
    outcomes = []
    for day in days:
        attempts, succeeded, failed, superseded, in_progress = outcome[day]
        outcomes.append(
            {
                "day": day.isoformat(),
                "attempts": attempts,
                "succeeded": succeeded,
                "failed": failed,
                "superseded": superseded,
                "in_progress": in_progress,
                "success_rate": succeeded / (succeeded + failed) if succeeded + failed else None,
                "note": "no data loaded"
                if day not in loaded_days
                else ("no attempts" if attempts == 0 else ""),
            }
        )
    failed_rows = _query(
        url,
        "select service_id, failure_cause, failure_phase, attempt_date"
        " from analytics.deployment_attempts"
        " where outcome = 'failed' and attempt_date between %(first)s and %(last)s",
        span,
    )

    def failures_by(index: int, key: str) -> list[dict[str, Any]]:
        groups: dict[str, set[int]] = defaultdict(set)
        services: dict[str, set[str]] = defaultdict(set)
        for i, row in enumerate(failed_rows):
            groups[row[index]].add(i)
            services[row[index]].add(row[0])
        ordered = sorted(groups, key=lambda k: (-len(groups[k]), k))
        return [{key: k, "failures": len(groups[k]), "services": len(services[k])} for k in ordered]

    durations: dict[tuple[date, str], list[float]] = defaultdict(list)
    for day, phase, ms in _query(
        url,
        "select attempt_date, phase, duration_ms from analytics.deployment_phases"
        " where status = 'succeeded' and attempt_date between %(first)s and %(last)s",
        span,
    ):
        durations[(day, phase)].append(float(ms))
    per_service: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for service_id, outcome_name in _query(
        url,
        "select service_id, outcome from analytics.deployment_attempts"
        " where attempt_date between %(first)s and %(last)s",
        span,
    ):
        counts = per_service[service_id]
        counts[0] += 1
        counts[1] += outcome_name == "succeeded"
        counts[2] += outcome_name == "failed"
    top = sorted(
        (s for s in per_service if per_service[s][2]), key=lambda s: (-per_service[s][2], s)
    )
    events = dict(
        _query(
            url,
            "select (occurred_at at time zone 'UTC')::date, count(*) from service_events"
            " group by 1",
            {},
        )
    )
    unknown = dict(
        _query(
            url,
            "select event_date, sum(events) from analytics.unclassified_event_texts_daily"
            " group by 1",
            {},
        )
    )
    coverage = []
    for day in days:
        failures = sum(1 for r in failed_rows if r[3] == day)
        unclassified = sum(1 for r in failed_rows if r[3] == day and r[1] == "unclassified")
        total = events.get(day, 0)
        coverage.append(
            {
                "day": day.isoformat(),
                "events": total,
                "unknown_text_events": int(unknown.get(day, 0)),
                "failures": failures,
                "unclassified_failures": unclassified,
                "unclassified_share": (int(unknown.get(day, 0)) + unclassified) / total
                if total
                else None,
            }
        )
    return {
        "outcomes": outcomes,
        "causes": failures_by(1, "cause"),
        "phases": failures_by(2, "phase"),
        "durations": [
            {
                "day": day.isoformat(),
                "phase": phase,
                "p50_ms": _percentile_cont(v, 0.5),
                "p95_ms": _percentile_cont(v, 0.95),
                "phases": len(v),
            }
            for (day, phase), v in sorted(durations.items())
        ],
        "services": [
            {
                "service_id": s,
                "attempts": per_service[s][0],
                "succeeded": per_service[s][1],
                "failed": per_service[s][2],
            }
            for s in top[:10]
        ],
        "coverage": coverage,
    }


# --- the page as Chromium shows it -------------------------------------------------------------


def chromium_path() -> str:
    """Debian's Chromium (.ci/run installs it where missing), or $CHROMIUM; else skip, saying so."""
    found = find_chromium()
    if found is None:
        pytest.skip(
            "no Chromium at /usr/bin/chromium (nor $CHROMIUM, nor `chromium` on PATH): "
            "`apt-get install -y chromium` (.ci/run does it) to run the report's browser test"
        )
    return found


TABLES_JS = """() => Object.fromEntries([...document.querySelectorAll('table[data-table]')].map(
  t => [t.dataset.table, [...t.querySelectorAll('tbody tr')]
    .filter(r => r.querySelector('td[data-col]'))
    .map(r => Object.fromEntries([...r.querySelectorAll('td[data-col]')]
      .map(c => [c.dataset.col, c.dataset.value])))]))"""

CHARTS_JS = """() => [...document.querySelectorAll('figure.chart')].map(f => ({
  name: f.dataset.chart,
  marks: f.querySelectorAll('svg path, svg rect').length,
  width: f.querySelector('svg').getBoundingClientRect().width,
  height: f.querySelector('svg').getBoundingClientRect().height,
  bars: Object.fromEntries([...f.querySelectorAll('g[id^="' + f.dataset.chart + '-bar-"]')].map(
    g => { const b = g.getBBox();
           return [g.id.slice(f.dataset.chart.length + 5), [b.width, b.height]]; })),
}))"""


@dataclass(frozen=True)
class Page:
    tables: dict[str, list[dict[str, str]]]
    tiles: dict[str, str]
    charts: list[dict[str, Any]]
    errors: list[str]
    requests: list[str]
    print_layout: dict[str, Any]
    pdf_bytes: int


def open_in_chromium(html: Path, screenshot: Path) -> Page:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    seen: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_FLAGS))
        try:
            # offline: a report that needed the network would fail to draw and log errors
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.on("request", lambda r: seen.append(r.url))
            page.goto(html.as_uri(), wait_until="load")
            tables = page.evaluate(TABLES_JS)
            tiles = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('[data-tile]')]
                  .map(t => [t.dataset.tile, t.querySelector('.value').textContent]))"""
            )
            charts = page.evaluate(CHARTS_JS)
            page.screenshot(path=str(screenshot), full_page=True)
            page.emulate_media(media="print")
            print_layout = page.evaluate(
                """() => ({
                  nav: getComputedStyle(document.querySelector('nav')).display,
                  body: document.body.getBoundingClientRect().width,
                  widest: Math.max(...[...document.querySelectorAll('figure.chart svg')]
                    .map(s => s.getBoundingClientRect().right)),
                })"""
            )
            pdf = page.pdf(format="A4")
        finally:
            browser.close()
    return Page(tables, tiles, charts, errors, seen, print_layout, len(pdf))


def _close(shown: str, expected: float | None) -> bool:
    if expected is None:
        return shown == ""
    return math.isclose(float(shown), expected, rel_tol=1e-9, abs_tol=1e-9)


def assert_table_equals(shown: list[dict[str, str]], expected: list[dict[str, Any]]) -> None:
    assert len(shown) == len(expected), (shown, expected)
    for row, want in zip(shown, expected, strict=True):
        for key, value in want.items():
            if isinstance(value, float) or value is None:
                assert _close(row[key], value), (key, row, want)
            else:
                assert row[key] == str(value), (key, row, want)


def test_the_report_opens_in_chromium_and_shows_the_marts_figures(
    warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out_dir = tmp_path_factory.mktemp("report-browser")
    html = out_dir / "deployment-report.html"
    first = warehouse.days[0] - timedelta(days=1)  # no load covers it: "no data"
    last = warehouse.extra_day  # loaded, no events: "no attempts"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODELARTS_", "HUAWEICLOUD_", "DAGSTER_HOME"))
        or k == settings.MODELARTS_RETENTION_DAYS  # the fixed days stay in the horizon
    }
    env[settings.DATABASE_URL] = warehouse.database_url
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "report",
            "--start",
            str(first),
            "--end",
            str(last),
            "--out",
            str(html),
        ],
        env=env,
        cwd=out_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"wrote {html.resolve()}" in done.stdout
    text = html.read_text(encoding="utf-8")
    # nothing to fetch or run: no script, no external source, link, font or stylesheet
    for reference in ("<script", 'src="', 'href="http', "url(http", "@import", "@font-face"):
        assert reference not in text, reference

    screenshot = out_dir / "deployment-report.png"
    page = open_in_chromium(html, screenshot)
    print(f"report screenshot: {screenshot}")

    assert page.errors == []
    assert [u for u in page.requests if not u.startswith(("file:", "data:"))] == []
    assert {c["name"] for c in page.charts} == CHARTS
    for chart in page.charts:
        assert chart["marks"] > 20, chart["name"]
        assert chart["width"] > 300 and chart["height"] > 100, chart
    assert screenshot.stat().st_size > 50_000

    expected = expected_tables(warehouse.database_url, first, last)
    assert expected["causes"] and expected["phases"] and expected["services"]
    assert [r["note"] for r in expected["outcomes"]][:1] == ["no data loaded"]
    assert [r["note"] for r in expected["outcomes"]][-1:] == ["no attempts"]
    assert_table_equals(page.tables["outcomes"], expected["outcomes"])
    succeeded = sum(r["succeeded"] for r in expected["outcomes"])
    rate = f"{succeeded / (succeeded + sum(r['failed'] for r in expected['outcomes'])):.1%}"
    assert page.tiles["success_rate"] == rate
    assert f"success rate {rate}," in done.stdout
    assert page.tiles["attempts"] == f"{sum(r['attempts'] for r in expected['outcomes']):,}"
    assert_table_equals(page.tables["causes"], expected["causes"])
    assert_table_equals(page.tables["phases"], expected["phases"])
    assert_table_equals(page.tables["services"], expected["services"])
    assert_table_equals(page.tables["coverage"], expected["coverage"])
    shown_durations = [
        {
            "day": row["day"],
            "phase": column.split(".")[0],
            "p50_ms": row[column],
            "p95_ms": row[column.replace("p50", "p95")],
            "phases": row[column.replace("p50_ms", "phases")],
        }
        for row in page.tables["durations"]
        for column in row
        if column.endswith(".p50_ms") and row[column]
    ]
    assert_table_equals(
        sorted(shown_durations, key=lambda r: (r["day"], r["phase"])), expected["durations"]
    )
    assert len(expected["durations"]) >= 5 * len(warehouse.days)

    # the late events posted after day 1 was loaded, caught by its rerun
    loads = {r["day"]: r for r in page.tables["loads"]}
    assert loads[warehouse.days[1].isoformat()]["late_events"] == str(LATE_EVENTS)
    assert loads[warehouse.days[0].isoformat()]["late_events"] == "0"
    assert loads[first.isoformat()]["loaded"] == "false"
    assert loads[last.isoformat()]["loaded"] == "true"
    texts = {r["text"] for r in page.tables["unmatched"]}
    assert {f"custom hook executed: late check {i}" for i in range(LATE_EVENTS)} <= texts

    # the bars are drawn to the figures: one scale per chart
    charts = {c["name"]: c for c in page.charts}
    assert_bars_follow(charts["causes"]["bars"], "failures", expected["causes"], "failures", 0)
    assert_bars_follow(charts["phases"]["bars"], "failures", expected["phases"], "failures", 0)
    for series in ("succeeded", "failed", "superseded"):
        assert_bars_follow(charts["outcomes"]["bars"], series, expected["outcomes"], series, 1)

    # in print: navigation hidden, charts inside the page, a PDF renders
    assert page.print_layout["nav"] == "none"
    assert page.print_layout["widest"] <= page.print_layout["body"] + 1
    assert page.pdf_bytes > 50_000


def assert_bars_follow(
    bars: dict[str, list[float]],
    series: str,
    rows: list[dict[str, Any]],
    key: str,
    axis: int,
) -> None:
    """Bar i of `series` has a size (width: axis 0, height: axis 1) proportional to row i."""
    scales = []
    for i, row in enumerate(rows):
        size = bars[f"{series}-{i}"][axis]
        if row[key]:
            scales.append(size / row[key])
        else:
            assert size < 0.01, (series, i, size)
    assert len(scales) >= 2
    assert max(scales) - min(scales) <= 0.01 * max(scales), (series, scales)


def test_the_nightly_asset_writes_the_report_with_its_path_and_a_preview(
    warehouse: Warehouse,
) -> None:
    meta = warehouse.report_metadata
    path = Path(str(meta["path"]))
    assert (
        path
        == (
            warehouse.data_dir / "reports" / f"deployment-report-{warehouse.extra_day}.html"
        ).resolve()
    )
    text = path.read_text(encoding="utf-8")
    first = warehouse.extra_day - timedelta(days=13)
    assert f"Deployment health, {first} to {warehouse.extra_day}" in text
    attempts = _query(
        warehouse.database_url,
        "select count(*) from analytics.deployment_attempts"
        " where attempt_date between %(first)s and %(last)s",
        {"first": first, "last": warehouse.extra_day},
    )[0][0]
    assert meta["attempts"] == attempts > 0
    assert meta["days_without_data"] == 14 - len(warehouse.days) - 1
    assert meta["late_events"] == LATE_EVENTS
    assert f"| {attempts} |" in str(meta["preview"])
    assert str(path) in str(meta["preview"])
    nightly = build_definitions().resolve_job_def("nightly")
    selected = {key.to_user_string() for key in nightly.asset_layer.selected_asset_keys}
    assert "deployment_report" in selected


def test_a_report_of_an_empty_warehouse_says_no_data(database_url: str, tmp_path: Path) -> None:
    engine = create_warehouse_engine(database_url)
    try:
        apply_migrations(engine)
        report = write_report(
            engine,
            date(2026, 11, 1),
            date(2026, 11, 3),
            tmp_path / "r.html",
            settings.max_unclassified_share(),
        )
    finally:
        engine.dispose()
    text = report.path.read_text(encoding="utf-8")
    assert text.count('data-value="no data loaded"') == 3 * 2  # outcomes and coverage tables
    assert text.count('<figure class="chart"') == len(CHARTS)
    assert "no attempt is in progress" in text
    assert report.summary()["days_without_data"] == 3


_SVG = re.compile(r"<svg.*?</svg>", re.DOTALL)

# a second report of the same data, in a fresh process: every chart read back, none drawn
_CACHED_REPORT = """
import sys
from datetime import date
from pathlib import Path
from pipelines.report.build import write_report
from pipelines.warehouse.database import create_warehouse_engine
engine = create_warehouse_engine(sys.argv[1])
first, last = date.fromisoformat(sys.argv[2]), date.fromisoformat(sys.argv[3])
report = write_report(engine, first, last, Path(sys.argv[4]), 0.05)
print(report.charts_drawn, report.charts_reused, "matplotlib" in sys.modules)
"""


def test_a_report_redraws_only_the_charts_whose_data_changed(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    first, last = warehouse.days[0], warehouse.extra_day
    engine = create_warehouse_engine(warehouse.database_url)
    try:
        drawn = write_report(engine, first, last, tmp_path / "a.html", 0.2)
        kept = write_report(engine, first, last, tmp_path / "b.html", 0.2)
        # the coverage chart draws the threshold line: that chart alone changes
        other = write_report(engine, first, last, tmp_path / "c.html", 0.05)
    finally:
        engine.dispose()
    assert (drawn.charts_drawn, drawn.charts_reused) == (len(CHARTS), 0)
    assert (kept.charts_drawn, kept.charts_reused) == (0, len(CHARTS))
    assert (other.charts_drawn, other.charts_reused) == (1, len(CHARTS) - 1)
    svgs = [_SVG.findall(r.path.read_text(encoding="utf-8")) for r in (drawn, kept, other)]
    assert len(svgs[0]) == len(CHARTS)
    assert svgs[1] == svgs[0]  # read back exactly as drawn
    assert sum(a != b for a, b in zip(svgs[0], svgs[2], strict=True)) == 1
    # the folder keeps the charts of the last report only
    assert len(list((tmp_path / ".report-charts").glob("*.svg"))) == len(CHARTS)
    done = subprocess.run(
        [sys.executable, "-c", _CACHED_REPORT, warehouse.database_url, str(first), str(last),
         str(tmp_path / "d.html")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the data of `other` again: nothing drawn, and matplotlib never imported
    assert done.stdout.split() == ["0", str(len(CHARTS)), "False"]
