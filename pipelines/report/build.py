"""Write the report file: read the marts, draw, render, and replace the file atomically."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from pipelines.report.chart_cache import ChartCache
from pipelines.report.queries import ReportData, read_report_data
from pipelines.report.render import render_html
from pipelines.warehouse.database import describe_url

log = logging.getLogger(__name__)

DEFAULT_DAYS = 14
# beside the report: its charts' SVG kept by what they show (chart_cache.py)
CHART_FOLDER = ".report-charts"


@dataclass(frozen=True)
class WrittenReport:
    """What a written report holds: for the CLI's line and the asset's metadata."""

    path: Path
    data: ReportData
    bytes: int
    seconds: float
    charts_drawn: int = 0  # the others read back unchanged (chart_cache.py)
    charts_reused: int = 0

    def summary(self) -> dict[str, int | float | str | None]:
        attempts = sum(d.attempts for d in self.data.outcomes)
        succeeded = sum(d.succeeded for d in self.data.outcomes)
        failed = sum(d.failed for d in self.data.outcomes)
        return {
            "first_day": self.data.first_day.isoformat(),
            "last_day": self.data.last_day.isoformat(),
            "attempts": attempts,
            "succeeded": succeeded,
            "failed": failed,
            # unrounded: every place that shows it rounds once, as the page does
            "success_rate": succeeded / (succeeded + failed) if succeeded + failed else None,
            "in_progress": len(self.data.open_attempts),
            "days_without_data": sum(not d.loaded for d in self.data.loads),
            "late_events": sum(d.late_events for d in self.data.loads),
        }

    def preview_markdown(self) -> str:
        """A few lines for the Dagster UI: the headline figures and the top causes."""
        s = self.summary()
        rate = "–" if s["success_rate"] is None else f"{float(s['success_rate']):.1%}"
        lines = [
            f"**Deployment health {s['first_day']} to {s['last_day']}** (UTC), file: "
            f"`{self.path.resolve()}`",
            "",
            "| attempts | succeeded | failed | success rate | in progress | days without data |"
            " late events |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {s['attempts']} | {s['succeeded']} | {s['failed']} | {rate} | {s['in_progress']} "
            f"| {s['days_without_data']} | {s['late_events']} |",
            "",
            "| top failure causes | failed attempts |",
            "|---|---:|",
        ]
        lines += [f"| {c.key} | {c.failures} |" for c in self.data.causes[:5]]
        if not self.data.causes:
            lines.append("| (no failed attempts) | |")
        return "\n".join(lines)


def default_range(last_day: date | None = None, days: int = DEFAULT_DAYS) -> tuple[date, date]:
    """The `days` UTC days up to `last_day` (default: yesterday, the last complete day)."""
    last = last_day or datetime.now(UTC).date() - timedelta(days=1)
    return last - timedelta(days=days - 1), last


def write_report(
    engine: Engine,
    first_day: date,
    last_day: date,
    path: Path,
    unclassified_threshold: float,
) -> WrittenReport:
    """Render the report of first_day..last_day (UTC, inclusive) into `path`.

    The file is written beside its destination and renamed over it, so a reader (a browser, the
    Dagster UI's link) sees the previous report or the new one, never half of one.
    """
    if last_day < first_day:
        raise ValueError(f"the last day {last_day} is before the first day {first_day}")
    started = time.perf_counter()
    data = read_report_data(engine, first_day, last_day)
    # the charts of the reports written to this folder, redrawn only when their data changed
    cache = ChartCache(path.parent / CHART_FOLDER)
    page = render_html(
        data,
        generated_at=datetime.now(UTC),
        source=describe_url(engine.url.render_as_string(hide_password=True)),
        unclassified_threshold=unclassified_threshold,
        draw=cache.chart,
    )
    encoded = page.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(encoded)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    cache.prune()
    report = WrittenReport(
        path, data, len(encoded), time.perf_counter() - started, cache.drawn, cache.reused
    )
    log.info("report %s..%s: %d bytes in %.2f s to %s (charts: %d drawn, %d unchanged)",
             first_day, last_day, report.bytes, report.seconds, path, cache.drawn,
             cache.reused)  # fmt: skip
    return report
