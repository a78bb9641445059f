"""The report's charts: matplotlib figures rendered offline to inline SVG (Agg backend, DejaVu
Sans shipped with matplotlib, text drawn as paths so a chart looks the same in any browser, mail
client or printer, whatever fonts it has)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, no GUI toolkit

import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

# defined without matplotlib for the page (chart_types.py); still names of this module
from pipelines.report.chart_types import PHASES as PHASES
from pipelines.report.chart_types import Chart as Chart
from pipelines.report.chart_types import duration_unit as duration_unit
from pipelines.report.chart_types import label as label
from pipelines.report.queries import (
    CoverageDay,
    FailingService,
    FailureCount,
    LoadDay,
    OutcomesDay,
    PhaseDurations,
)

# Okabe-Ito: told apart with any colour vision, and in grey print.
SUCCEEDED = "#009E73"
FAILED = "#D55E00"
SUPERSEDED = "#999999"
IN_PROGRESS = "#56B4E9"
RATE = "#0072B2"
NEUTRAL = "#4D4D4D"
LATE = "#E69F00"
NO_DATA = "#EEEEEE"

WIDTH_IN = 10.0
# Above this many days, the per-day value labels would overlap: the tables beside hold them.
LABELLED_DAYS = 21
# Longer names are cut in the charts (the tables beside show them whole).
LABEL_CHARS = 30
HALF_WIDTH_IN = 5.2

# DejaVu Sans ships with matplotlib; service names and model labels may be Chinese, so CJK fonts
# the machine has are glyph fallbacks (matplotlib >= 3.6 falls back per glyph along the list).
_CJK_FALLBACKS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "PingFang SC",
)


def _font_families() -> list[str]:
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in _CJK_FALLBACKS if name in installed)]


_STYLE: Any = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "svg.fonttype": "path",
}


def _style(name: str) -> Any:
    # the salt makes the SVG's generated ids differ between charts (and stay stable across runs)
    return {**_STYLE, "svg.hashsalt": name, "font.family": _font_families()}


@contextmanager
def _figure(
    name: str, height_in: float, width_in: float = WIDTH_IN, **subplots: Any
) -> Iterator[tuple[Figure, Any]]:
    with plt.rc_context(_style(name)):
        fig, axes = plt.subplots(figsize=(width_in, height_in), **subplots)
        try:
            yield fig, axes
        finally:
            plt.close(fig)


def _svg(fig: Figure, name: str) -> Chart:
    """The figure as an SVG element whose ids are unique in a page holding several charts."""
    buffer = io.StringIO()
    with plt.rc_context(_style(name)):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and doctype: it is inlined in HTML
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.DOTALL)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', text)
    # sized by the page's CSS (width 100%), its aspect kept by the viewBox
    text = re.sub(r'^<svg([^>]*?) width="[^"]+" height="[^"]+"', r"<svg\1", text, count=1)
    return Chart(name, text.replace("<svg", f'<svg role="img" aria-label="{name}"', 1))


def _tag(bars: Any, series: str, reverse: bool = False) -> None:
    """Name each bar `bar-SERIES-I` (I: the row of the table beside the chart), so a reader of
    the page (the tests) can tie a bar's drawn size to its figure."""
    patches = list(bars)
    count = len(patches)
    for i, patch in enumerate(patches):
        patch.set_gid(f"bar-{series}-{count - 1 - i if reverse else i}")


def _empty_note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#888888")


def _count_axis(ax: Axes, empty: bool) -> None:
    """The x axis of horizontal bars counting failed attempts."""
    if empty:
        _empty_note(ax, "no failed attempts in this range")
        ax.set_yticks([])
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", visible=True)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _day_labels(days: Sequence[date]) -> list[str]:
    return [f"{d:%a}\n{d:%b} {d.day}" for d in days]


def _day_axis(ax: Axes, days: Sequence[date]) -> None:
    """Days as categories; at most ~14 labels, so they stay readable on a long range."""
    step = max(1, -(-len(days) // 14))
    positions = list(range(0, len(days), step))
    ax.set_xticks(positions, [_day_labels(days)[i] for i in positions])
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.tick_params(axis="x", length=0)


def _finish_per_day(
    fig: Figure, ax: Axes, name: str, days: Sequence[date], ylabel: str, title: str
) -> Chart:
    """Label a chart of one column per day, its legend right of it, and render it."""
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    _day_axis(ax, days)
    fig.tight_layout()
    return _svg(fig, name)


def _mark_no_data(ax: Axes, loaded: Sequence[bool], label: bool = True) -> None:
    """Shade the days no load covered, one band per run of them: they have no data, which is
    not the same as a day without attempts."""
    runs: list[list[int]] = []
    for i, is_loaded in enumerate(loaded):
        if is_loaded:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        ax.axvspan(run[0] - 0.5, run[-1] + 0.5, color=NO_DATA, zorder=0, linewidth=0)
        if label:
            ax.text(
                (run[0] + run[-1]) / 2,
                0.5,
                "no data",
                transform=ax.get_xaxis_transform(),
                rotation=0 if len(run) >= 3 else 90,
                ha="center",
                va="center",
                color="#888888",
                fontsize=9,
            )


def outcomes_chart(days: Sequence[OutcomesDay], loaded: Sequence[bool]) -> Chart:
    """Success rate per day (top) over the attempts per day by outcome (bottom)."""
    with _figure("outcomes", 5.6, nrows=2, sharex=True, gridspec_kw={"height_ratios": [2, 3]}) as (
        fig,
        (rate_ax, count_ax),
    ):
        x = list(range(len(days)))
        rates = [d.success_rate for d in days]
        _mark_no_data(rate_ax, loaded, label=False)
        _mark_no_data(count_ax, loaded)
        segments: list[list[tuple[int, float]]] = [[]]
        for i, rate in zip(x, rates, strict=True):
            if rate is None:
                segments.append([])
            else:
                segments[-1].append((i, rate))
        for segment in filter(None, segments):
            rate_ax.plot(*zip(*segment, strict=True), color=RATE, linewidth=2, marker="o")
        for i, rate in zip(x, rates, strict=True):
            if rate is not None and len(days) <= LABELLED_DAYS:
                rate_ax.annotate(
                    f"{rate:.0%}",
                    (i, rate),
                    textcoords="offset points",
                    xytext=(0, 7),
                    ha="center",
                    fontsize=9,
                    color=RATE,
                )
        rate_ax.set_ylim(0, 1.12)
        rate_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        rate_ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        rate_ax.set_ylabel("success rate")
        rate_ax.set_title("Success rate: succeeded / (succeeded + failed)", loc="left")

        bottom = [0] * len(days)
        for field, color in (
            ("succeeded", SUCCEEDED),
            ("failed", FAILED),
            ("superseded", SUPERSEDED),
            ("in_progress", IN_PROGRESS),
        ):
            values = [getattr(d, field) for d in days]
            bars = count_ax.bar(
                x, values, bottom=bottom, color=color, label=label(field), width=0.7
            )
            _tag(bars, field)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        top = max(bottom, default=0)
        for i, (day, is_loaded) in enumerate(zip(days, loaded, strict=True)):
            if day.attempts and len(days) <= LABELLED_DAYS:
                count_ax.text(
                    i,
                    day.attempts,
                    f"{day.attempts}",
                    ha="center",
                    va="bottom",
                    fontsize=9,
                    color=NEUTRAL,
                )
            elif is_loaded and not day.attempts and len(days) <= LABELLED_DAYS:
                count_ax.text(
                    i, 0, "no\nattempts", ha="center", va="bottom", fontsize=8, color="#888888"
                )
        count_ax.set_ylim(0, max(top * 1.15, 1))
        count_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        return _finish_per_day(
            fig,
            count_ax,
            "outcomes",
            [d.day for d in days],
            "attempts",
            "Attempts by outcome (UTC day of the attempt's start)",
        )


def failures_chart(
    name: str, counts: Sequence[FailureCount], title: str, rows: int | None = None
) -> Chart:
    """Horizontal bars of failed attempts per key (cause or phase), most frequent on top."""
    # `rows`: the height of a chart drawn beside another, so the two line up
    height = 1.0 + 0.32 * max(rows or len(counts), 1)
    with _figure(name, height, width_in=HALF_WIDTH_IN) as (fig, ax):
        labels = [_short(label(c.key)) for c in counts][::-1]
        values = [c.failures for c in counts][::-1]
        bars = ax.barh(labels, values, color=FAILED, height=0.65)
        _tag(bars, "failures", reverse=True)
        ax.bar_label(bars, padding=3, fontsize=9)
        _count_axis(ax, empty=not counts)
        ax.set_xlim(0, max(values, default=1) * 1.15)
        ax.set_xlabel("failed attempts")
        ax.set_title(title, loc="left")
        fig.tight_layout()
        return _svg(fig, name)


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def durations_chart(
    rows: Sequence[PhaseDurations], days: Sequence[date], loaded: Sequence[bool]
) -> Chart:
    """Small multiples, one per phase in deployment order: p50 and p95 per day."""
    by_phase: dict[str, dict[date, PhaseDurations]] = {}
    for r in rows:
        by_phase.setdefault(r.phase, {})[r.day] = r
    phases = [p for p in PHASES if p in by_phase] + sorted(set(by_phase) - set(PHASES))
    with _figure("durations", 6.4, nrows=2, ncols=3, sharex=True) as (fig, grid):
        axes = list(grid.flat)
        for ax, phase in zip(axes, phases, strict=False):
            series = by_phase[phase]
            _mark_no_data(ax, loaded, label=False)
            unit, per = duration_unit([r.p95_ms for r in series.values()])
            for field, style, name in (("p50_ms", "-", "p50"), ("p95_ms", "--", "p95")):
                points = [
                    (i, getattr(series[d], field) / per) for i, d in enumerate(days) if d in series
                ]
                ax.plot(
                    *zip(*points, strict=True),
                    style,
                    color=RATE,
                    marker="o",
                    markersize=3.5,
                    linewidth=1.6,
                    label=name,
                )
            ax.set_ylim(bottom=0)
            ax.set_title(label(phase), loc="left", fontsize=10)
            ax.set_ylabel(unit)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        for ax in axes[len(phases) :]:
            ax.axis("off")
        if not phases:
            _empty_note(axes[0], "no succeeded phases in this range")
        elif len(phases) < len(axes):
            handles, _ = axes[0].get_legend_handles_labels()
            axes[-1].legend(
                handles,
                ["p50 (median)", "p95"],
                loc="center left",
                fontsize=10,
                title="succeeded phases,\nper UTC day",
                title_fontsize=10,
            )
            if not all(loaded):
                axes[-1].text(
                    0.0,
                    0.12,
                    "grey: no data loaded",
                    transform=axes[-1].transAxes,
                    fontsize=9,
                    color="#666666",
                )
        step = max(1, -(-len(days) // 5))
        for ax in axes[: max(len(phases), 1)]:
            ax.set_xticks(
                range(0, len(days), step),
                [f"{days[i]:%b} {days[i].day}" for i in range(0, len(days), step)],
            )
            ax.tick_params(axis="x", labelbottom=True, labelsize=8.5)
            ax.set_xlim(-0.5, len(days) - 0.5)
        fig.suptitle(
            "Duration of succeeded phases, p50 (solid) and p95 (dashed), all services",
            x=0.01,
            ha="left",
            fontsize=11,
            fontweight="bold",
        )
        fig.tight_layout()
        return _svg(fig, "durations")


def failing_services_chart(services: Sequence[FailingService]) -> Chart:
    """The services with the most failed attempts, their failed and succeeded attempts."""
    height = 1.0 + 0.3 * max(len(services), 1)
    with _figure("services", height) as (fig, ax):
        labels = [_short(s.service_name or s.service_id) for s in services][::-1]
        failed = [s.failed for s in services][::-1]
        succeeded = [s.succeeded for s in services][::-1]
        # positions, not the names as categories: two services may share a name
        y = list(range(len(labels)))
        ax.set_yticks(y, labels)
        _tag(ax.barh(y, failed, color=FAILED, height=0.65, label="failed"), "failed", True)
        bars = ax.barh(
            y,
            succeeded,
            left=failed,
            color=SUCCEEDED,
            height=0.65,
            label="succeeded",
            alpha=0.55,
        )
        _tag(bars, "succeeded", reverse=True)
        ax.bar_label(
            bars,
            labels=[
                f"{f} failed of {s.attempts}" for f, s in zip(failed, services[::-1], strict=True)
            ],
            padding=3,
            fontsize=9,
        )
        _count_axis(ax, empty=not services)
        total = [f + s for f, s in zip(failed, succeeded, strict=True)]
        ax.set_xlim(0, max(total, default=1) * 1.3)
        ax.set_xlabel("attempts (failed, then succeeded)")
        ax.set_title("Services with the most failed attempts", loc="left")
        ax.legend(loc="lower right", fontsize=9)
        fig.tight_layout()
        return _svg(fig, "services")


def coverage_chart(days: Sequence[CoverageDay], loaded: Sequence[bool], threshold: float) -> Chart:
    """The share of each day's events nothing classified, against the checks' warning line."""
    with _figure("coverage", 3.4) as (fig, ax):
        x = list(range(len(days)))
        _mark_no_data(ax, loaded)
        shares = [d.unclassified_share or 0.0 for d in days]
        bars = ax.bar(x, shares, color=LATE, width=0.7, label="unclassified share")
        _tag(bars, "share")
        ax.bar_label(
            bars,
            labels=[
                ""
                if d.unclassified_share is None or len(days) > LABELLED_DAYS
                else f"{d.unclassified_share:.2%}"
                for d in days
            ],
            padding=2,
            fontsize=8.5,
        )
        ax.axhline(
            threshold,
            color=FAILED,
            linestyle="--",
            linewidth=1.2,
            label=f"warning above {threshold:.0%}",
        )
        ax.set_ylim(0, max([*shares, threshold]) * 1.35)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        return _finish_per_day(
            fig,
            ax,
            "coverage",
            [d.day for d in days],
            "share of the day's events",
            "Unclassified: unknown event texts + failures no rule matched, per day",
        )


def loads_chart(days: Sequence[LoadDay]) -> Chart:
    """Events inserted per day by its first complete load, and late ones caught after it."""
    with _figure("loads", 3.4) as (fig, ax):
        x = list(range(len(days)))
        _mark_no_data(ax, [d.loaded for d in days])
        first = [d.first_load_events for d in days]
        late = [d.late_events for d in days]
        _tag(ax.bar(x, first, color=RATE, width=0.7, label="first complete load"), "first")
        bars = ax.bar(x, late, bottom=first, color=LATE, width=0.7, label="caught late")
        _tag(bars, "late")
        shown = len(days) <= LABELLED_DAYS
        ax.bar_label(bars, labels=[f"+{n}" if n and shown else "" for n in late], padding=2)
        ax.set_ylim(0, max([f + n for f, n in zip(first, late, strict=True)] or [1]) * 1.2 or 1)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        return _finish_per_day(
            fig,
            ax,
            "loads",
            [d.day for d in days],
            "events inserted",
            "Events loaded per day: first complete load, and late events caught",
        )
