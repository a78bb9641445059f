"""The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

Beside every chart, a table holds the figures it draws; each figure cell carries the exact value
in `data-value` (what the tests compare with the marts) and shows it rounded for people.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from pipelines.horizon import describe_days
from pipelines.report import chart_types as charts
from pipelines.report.chart_cache import Draw, draw_now
from pipelines.report.queries import LoadDay, ReportData

Cell = tuple[str, Any, str]  # (column, exact value, shown text)

_CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --rule: #d1d9e0; --bg: #f6f8fa;
  --ok: #00704f; --bad: #b34700; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "DejaVu Sans", "Segoe UI", Roboto, Helvetica, Arial,
  "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif;
  color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header p { margin: 2px 0; color: var(--muted); }
h2 { font-size: 20px; margin: 36px 0 6px; padding-top: 10px; border-top: 2px solid var(--rule); }
h3 { font-size: 16px; margin: 18px 0 6px; }
p.lead { margin: 0 0 10px; color: var(--muted); max-width: 80ch; }
nav { margin: 14px 0 0; font-size: 14px; }
nav a { color: #0969da; margin-right: 14px; text-decoration: none; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 10px;
  margin: 18px 0 4px; }
.tile { border: 1px solid var(--rule); border-radius: 8px; padding: 10px 12px;
  background: var(--bg); }
.tile .label { font-size: 13px; color: var(--muted); }
.tile .value { font-size: 24px; font-weight: 700; }
.tile .note { font-size: 12px; color: var(--muted); }
figure.chart { margin: 8px 0 10px; }
figure.chart svg { display: block; width: 100%; height: auto; }
figure.chart figcaption { font-size: 13px; color: var(--muted); }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 900px) { .pair { grid-template-columns: 1fr; } }
table.figures { border-collapse: collapse; font-size: 13px; margin: 6px 0 14px; width: 100%; }
table.figures th, table.figures td { padding: 3px 8px; border-bottom: 1px solid var(--rule);
  text-align: right; vertical-align: top; }
table.figures th { background: var(--bg); font-weight: 600; }
table.figures th:first-child, table.figures td:first-child { text-align: left; }
table.figures td:first-child { white-space: nowrap; }
table.figures th.text { text-align: left; }
table.figures td.text { text-align: left; word-break: break-word; font-family: "DejaVu Sans Mono",
  Consolas, "Noto Sans Mono CJK SC", monospace; font-size: 12px; }
table.figures tr.no-data td { color: var(--muted); background: #fafafa; font-style: italic; }
.note-empty { color: var(--muted); font-style: italic; }
.bad { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { font-size: 11pt; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure.chart, .tile, tr { break-inside: avoid; page-break-inside: avoid; }
  .pair { grid-template-columns: 1fr 1fr; }
  table.figures { font-size: 9pt; }
}
"""


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    body: str


def _fmt_int(value: int) -> str:
    return f"{value:,}"


def _fmt_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _fmt_time(value: datetime | None) -> str:
    return "–" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _fmt_day(value: date) -> str:
    return f"{value:%a} {value.isoformat()}"


def _counts(record: object, *fields: str) -> list[Cell]:
    """The cells of a record's counts, each in the column named as its field."""
    return [(field, getattr(record, field), _fmt_int(getattr(record, field))) for field in fields]


def _attr(value: Any) -> str:
    """The exact value for data-value: numbers with full precision, dates ISO, null empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _table(
    name: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    row_class: Callable[[int], str] | None = None,
    text_columns: Sequence[str] = (),
    empty: str = "none",
    head_html: str | None = None,
) -> str:
    columns = [col for col, _, _ in rows[0]] if rows else []
    text_headers = {i for i, col in enumerate(columns) if col in text_columns}
    head = head_html or (
        "<tr>"
        + "".join(
            ('<th class="text">' if i in text_headers else "<th>") + f"{escape(h)}</th>"
            for i, h in enumerate(headers)
        )
        + "</tr>"
    )
    body = []
    for index, row in enumerate(rows):
        css = row_class(index) if row_class else ""
        cells = "".join(
            f'<td data-col="{escape(col)}" data-value="{escape(_attr(value))}"'
            + (' class="text">' if col in text_columns else ">")
            + f"{escape(shown)}</td>"
            for col, value, shown in row
        )
        body.append((f'<tr class="{css}">' if css else "<tr>") + f"{cells}</tr>")
    if not rows:
        body.append(
            f'<tr><td colspan="{len(headers)}" class="note-empty">{escape(empty)}</td></tr>'
        )
    return (
        f'<table class="figures" data-table="{escape(name)}"><thead>{head}</thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _figure(chart: charts.Chart, caption: str) -> str:
    return (
        f'<figure class="chart" data-chart="{escape(chart.name)}">{chart.svg}'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _day_note(loaded: bool, attempts: int) -> str:
    if not loaded:
        return "no data loaded"
    return "no attempts" if attempts == 0 else ""


def _outcomes(data: ReportData, loaded: list[bool], draw: Draw) -> Section:
    rows = [
        [
            ("day", d.day, _fmt_day(d.day)),
            *_counts(d, "attempts", "succeeded", "failed", "superseded", "in_progress"),
            ("success_rate", d.success_rate, _fmt_rate(d.success_rate)),
            *_counts(d, "v2_attempts"),
            ("v2_success_rate", d.v2_success_rate, _fmt_rate(d.v2_success_rate)),
            ("note", _day_note(is_loaded, d.attempts), _day_note(is_loaded, d.attempts)),
        ]
        for d, is_loaded in zip(data.outcomes, loaded, strict=True)
    ]
    table = _table(
        "outcomes",
        [
            "day (UTC)",
            "attempts",
            "succeeded",
            "failed",
            "superseded",
            "in progress",
            "success rate",
            "of them new-version (v2)",
            "v2 success rate",
            "note",
        ],
        rows,
        row_class=lambda i: "" if loaded[i] and data.outcomes[i].attempts else "no-data",
    )
    body = (
        '<p class="lead">Every deployment attempt of every service, by the UTC day it started. '
        "The success rate leaves out attempts with no verdict (superseded by a newer deployment, "
        "or still in progress). Grey days have <em>no data</em>: no load covered them, which is "
        "not the same as a loaded day with <em>no attempts</em>. Both API generations count: "
        "a new-version (v2) service's attempt is one of its service versions; the last columns "
        "show their share.</p>"
        + _figure(
            draw("outcomes_chart", data.outcomes, loaded),
            "Source: analytics.deployment_outcomes_daily, summed over services.",
        )
        + table
    )
    return Section("outcomes", "Deployment success per day", body)


def _failures(data: ReportData, draw: Draw) -> Section:
    def rows(counts: Sequence[Any], key: str) -> list[list[Cell]]:
        return [
            [
                (key, c.key, charts.label(c.key)),
                *_counts(c, "failures", "services"),
            ]
            for c in counts
        ]

    bars = max(len(data.causes), len(data.phases))
    causes = draw("failures_chart", "causes", data.causes, "Failed attempts by cause", bars)
    phases = draw(
        "failures_chart", "phases", data.phases, "Failed attempts by phase in progress", bars
    )
    body = (
        '<p class="lead">Failed attempts of the range, by the normalised cause the rules gave '
        "their failure text (<code>unclassified</code>: no rule matched) and by the phase that "
        "was in progress when they failed.</p>"
        '<div class="pair">'
        + "".join(
            "<div>"
            + _figure(chart, f"Source: {source}.")
            + _table(
                chart.name,
                [key, "failed attempts", "services"],
                rows(counts, key),
                empty="no failed attempts",
            )
            + "</div>"
            for chart, source, key, counts in (
                (causes, "analytics.deployment_failure_causes_daily", "cause", data.causes),
                (phases, "analytics.deployment_attempts (outcome failed)", "phase", data.phases),
            )
        )
        + "</div>"
    )
    return Section("failures", "Why and where deployments fail", body)


def _durations(data: ReportData, loaded: list[bool], draw: Draw) -> Section:
    days = [d.day for d in data.outcomes]
    present = {r.phase for r in data.durations}
    phases = [p for p in charts.PHASES if p in present] + sorted(present - set(charts.PHASES))
    units = {
        phase: charts.duration_unit([r.p95_ms for r in data.durations if r.phase == phase])
        for phase in phases
    }
    cells = {(r.day, r.phase): r for r in data.durations}

    def row(index: int, day: date) -> list[Cell]:
        out: list[Cell] = [("day", day, _fmt_day(day))]
        for phase in phases:
            r = cells.get((day, phase))
            per = units[phase][1]
            for field in ("p50_ms", "p95_ms"):
                ms = None if r is None else getattr(r, field)
                shown = (
                    ("no data" if not loaded[index] else "–")
                    if ms is None
                    else (f"{ms / per:,.1f}")
                )
                out.append((f"{phase}.{field}", ms, shown))
            n = 0 if r is None else r.phases
            out.append((f"{phase}.phases", n, _fmt_int(n)))
        return out

    head = (
        '<tr><th rowspan="2">day (UTC)</th>'
        + "".join(f'<th colspan="3">{escape(charts.label(p))} ({units[p][0]})</th>' for p in phases)
        + "</tr><tr>"
        + "<th>p50</th><th>p95</th><th>n</th>" * len(phases)
        + "</tr>"
    )
    body = (
        '<p class="lead">How long each phase took when it succeeded, per UTC day of the '
        "attempt's start: the median (p50) and the 95th percentile (p95) over all services' "
        "phases (continuous percentiles; <em>n</em>: succeeded phases). Each panel has its own "
        "scale and unit.</p>"
        + _figure(
            draw("durations_chart", data.durations, days, loaded),
            "Source: analytics.deployment_phases (status succeeded).",
        )
        + _table(
            "durations",
            ["day", *phases],
            [row(i, d) for i, d in enumerate(days)],
            row_class=lambda i: "" if loaded[i] else "no-data",
            head_html=head,
        )
    )
    return Section("durations", "Phase durations", body)


def _services(data: ReportData, draw: Draw) -> Section:
    rows = [
        [
            ("service", s.service_name or s.service_id, s.service_name or s.service_id),
            ("service_id", s.service_id, s.service_id),
            ("generation", s.generation, s.generation),
            *_counts(s, "failed", "attempts", "succeeded"),
            ("success_rate", s.success_rate, _fmt_rate(s.success_rate)),
        ]
        for s in data.failing_services
    ]
    body = (
        f'<p class="lead">The {len(data.failing_services) or "no"} services with the most failed '
        "attempts in the range (ties by service id).</p>"
        + _figure(
            draw("failing_services_chart", data.failing_services),
            "Source: analytics.deployment_outcomes_daily, summed per service.",
        )
        + _table(
            "services",
            [
                "service",
                "service id",
                "generation",
                "failed",
                "attempts",
                "succeeded",
                "success rate",
            ],
            rows,
            text_columns=("service_id", "generation"),
            empty="no failed attempts",
        )
    )
    return Section("services", "Services with the most failed attempts", body)


def _open_attempts(data: ReportData, as_of: datetime) -> Section:
    rows = [
        [
            ("service", a.service_name or a.service_id, a.service_name or a.service_id),
            ("started_at", a.started_at, _fmt_time(a.started_at)),
            (
                "open_for",
                round((as_of - a.started_at).total_seconds() / 3600, 1),
                f"{(as_of - a.started_at).total_seconds() / 3600:,.1f} h",
            ),
            ("current_phase", a.current_phase, charts.label(a.current_phase or "–")),
            ("models", a.models, a.models or "–"),
            ("events", a.events, _fmt_int(a.events)),
        ]
        for a in data.open_attempts
    ]
    body = (
        f'<p class="lead">Attempts started on or before {data.last_day} with no terminal event in '
        "the data yet, oldest first. <em>Open for</em> runs to the end of the last day loaded "
        f"({_fmt_time(as_of)}): the attempt has been open at least that long. One whose outcome "
        "arrives with a later day's load moves to it when that day's marts are rebuilt.</p>"
        + _table(
            "open_attempts",
            ["service", "started", "open for", "current phase", "models", "events so far"],
            rows,
            text_columns=("models",),
            empty="no attempt is in progress",
        )
    )
    return Section("open", f"Attempts still in progress ({len(rows)})", body)


def _coverage(data: ReportData, loaded: list[bool], threshold: float, draw: Draw) -> Section:
    rows = [
        [
            ("day", c.day, _fmt_day(c.day)),
            *_counts(c, "events", "unknown_text_events", "failures", "unclassified_failures"),
            (
                "unclassified_share",
                c.unclassified_share,
                "–" if c.unclassified_share is None else f"{c.unclassified_share:.2%}",
            ),
            ("note", "" if is_loaded else "no data loaded", "" if is_loaded else "no data loaded"),
        ]
        for c, is_loaded in zip(data.coverage, loaded, strict=True)
    ]
    texts = [
        [
            ("kind", u.kind, u.kind),
            ("text", u.text, u.text if len(u.text) <= 300 else u.text[:297] + "..."),
            *_counts(u, "occurrences", "services"),
            ("last_seen", u.last_seen, _fmt_time(u.last_seen)),
        ]
        for u in data.unmatched
    ]
    classified = sum(c.failures - c.unclassified_failures for c in data.coverage)
    failures = sum(c.failures for c in data.coverage)
    rule_share = "no failures" if not failures else f"{classified / failures:.1%}"
    body = (
        f'<p class="lead">Failure texts a cause rule classified: <strong>{rule_share}</strong> '
        f"({_fmt_int(classified)} of {_fmt_int(failures)}). Per day, the share of the events that "
        "nothing recognised: texts outside the vocabulary "
        "(analytics.unclassified_event_texts_daily) plus failures no rule of "
        "analytics.failure_cause_rules matched. The marts' check warns "
        f"above {threshold:.0%}; the texts below are the candidates for a rule.</p>"
        + _figure(
            draw("coverage_chart", data.coverage, loaded, threshold),
            "Source: service_events (events per day), analytics.unclassified_event_texts_daily, "
            "analytics.deployment_failure_causes_daily.",
        )
        + _table(
            "coverage",
            [
                "day (UTC)",
                "events",
                "unknown texts",
                "failures",
                "unclassified failures",
                "unclassified share",
                "note",
            ],
            rows,
            row_class=lambda i: "" if loaded[i] else "no-data",
        )
        + "<h3>Top unmatched texts</h3>"
        + _table(
            "unmatched",
            ["kind", "text", "occurrences", "services", "last seen"],
            texts,
            text_columns=("text",),
            empty="every text of the range was recognised",
        )
    )
    return Section("coverage", "Classification coverage", body)


def _load_counts(loads: list[LoadDay]) -> list[LoadDay]:
    """The loads without their times, which the chart does not show: the chart of the same
    counts is the same chart (and a kept one, chart_cache.py), whenever the loads ran."""
    return [replace(d, first_loaded_at=None, last_loaded_at=None) for d in loads]


def _load_note(loaded: bool, unrecoverable: bool) -> str:
    if loaded:
        return "yes"
    return "unrecoverable" if unrecoverable else "no data loaded"


def _freshness(data: ReportData, draw: Draw) -> Section:
    f = data.freshness
    rows = [
        [
            ("day", d.day, _fmt_day(d.day)),
            ("loaded", d.loaded, _load_note(d.loaded, d.day in data.unrecoverable)),
            ("first_loaded_at", d.first_loaded_at, _fmt_time(d.first_loaded_at)),
            *_counts(d, "first_load_events", "later_loads", "late_events"),
            ("last_loaded_at", d.last_loaded_at, _fmt_time(d.last_loaded_at)),
        ]
        for d in data.loads
    ]
    late = sum(d.late_events for d in data.loads)
    lost = describe_days(data.unrecoverable)
    body = (
        f'<p class="lead">Last day loaded completely: <strong>{f.last_loaded_day or "none"}'
        f"</strong>; last load finished {_fmt_time(f.last_load_finished_at)}; marts last rebuilt "
        f"{_fmt_time(f.marts_refreshed_at)}; failed loads in the 7 days before this report: "
        f"{f.failed_loads_7d}. <strong>{_fmt_int(late)}</strong> late events were caught in the "
        "range: events inserted for a day by loads after its first complete load (reruns, the "
        "nightly job's lookback days, MODELARTS_LOOKBACK_HOURS windows; a load counts for the day "
        "its window starts in).</p>"
        + (
            f'<p class="lead" data-unrecoverable="{len(data.unrecoverable)}"><strong>'
            f"{len(data.unrecoverable)} day(s) unrecoverable</strong>: never loaded, and wholly "
            f"older than the API's retention of events (MODELARTS_RETENTION_DAYS), so lost for "
            f"good: {escape(lost)}.</p>"
            if data.unrecoverable
            else ""
        )
        + _figure(
            draw("loads_chart", _load_counts(data.loads)), "Source: load_batches (succeeded loads)."
        )
        + _table(
            "loads",
            [
                "day (UTC)",
                "loaded",
                "first complete load",
                "events",
                "later loads",
                "late events",
                "last load",
            ],
            rows,
            row_class=lambda i: "" if data.loads[i].loaded else "no-data",
        )
    )
    return Section("freshness", "Data freshness", body)


def _tiles(data: ReportData, threshold: float) -> str:
    attempts = sum(d.attempts for d in data.outcomes)
    succeeded = sum(d.succeeded for d in data.outcomes)
    failed = sum(d.failed for d in data.outcomes)
    rate = succeeded / (succeeded + failed) if succeeded + failed else None
    events = sum(c.events for c in data.coverage)
    unclassified = sum(c.unknown_text_events + c.unclassified_failures for c in data.coverage)
    share = unclassified / events if events else None
    no_data = sum(not d.loaded for d in data.loads)
    tiles = [
        (
            "success_rate",
            "success rate",
            _fmt_rate(rate),
            f"{_fmt_int(succeeded)} succeeded, {_fmt_int(failed)} failed",
        ),
        ("attempts", "attempts", _fmt_int(attempts), f"{len(data.outcomes)} days"),
        (
            "in_progress",
            "in progress now",
            _fmt_int(len(data.open_attempts)),
            "attempts with no outcome yet",
        ),
        (
            "unclassified_share",
            "unclassified",
            "–" if share is None else f"{share:.2%}",
            f"of events; warning above {threshold:.0%}",
        ),
        (
            "last_loaded_day",
            "last loaded day",
            str(data.freshness.last_loaded_day or "none"),
            f"{no_data} day(s) of the range without data" if no_data else "every day loaded",
        ),
    ]
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile" data-tile="{key}"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div><div class="note">{escape(note)}</div></div>'
            for key, label, value, note in tiles
        )
        + "</div>"
    )


def render_html(
    data: ReportData,
    generated_at: datetime,
    source: str,
    unclassified_threshold: float,
    draw: Draw = draw_now,
) -> str:
    """The whole report page; its charts by `draw` (a ChartCache's `chart`: drawn when changed)."""
    loaded = [d.loaded for d in data.loads]
    horizon = data.freshness.last_loaded_day
    as_of = (
        datetime(horizon.year, horizon.month, horizon.day, tzinfo=UTC) + timedelta(days=1)
        if horizon
        else generated_at
    )
    sections = [
        _outcomes(data, loaded, draw),
        _failures(data, draw),
        _durations(data, loaded, draw),
        _services(data, draw),
        _open_attempts(data, min(as_of, generated_at)),
        _coverage(data, loaded, unclassified_threshold, draw),
        _freshness(data, draw),
    ]
    title = f"Deployment health, {data.first_day} to {data.last_day}"
    nav = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>{s.body}</section>' for s in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{escape(title)}</h1>"
        f"<p>ModelArts inference services, all UTC days {data.first_day} to {data.last_day} "
        f"inclusive. Generated {_fmt_time(generated_at)} from {escape(source)}.</p>"
        f"<nav>{nav}</nav></header>"
        f"{_tiles(data, unclassified_threshold)}{body}"
        "<footer>Made by <code>modelarts-etl report</code> from the analytics marts "
        "(README: Deployment analytics). Every chart's figures are in the table beside it. "
        "This file is self-contained: it loads nothing from the network.</footer>"
        "</main></body></html>\n"
    )
