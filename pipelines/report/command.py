"""`modelarts-etl report`: the range's defaults, and the report written with the lines the
command prints."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from pipelines.report.build import DEFAULT_DAYS, default_range, write_report


def report_range(start: date | None, end: date | None) -> tuple[date, date]:
    """--start/--end with their defaults: the 14 days up to --end, which defaults to yesterday."""
    if start and not end:
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        return start, max(start, min(start + timedelta(days=DEFAULT_DAYS - 1), yesterday))
    first, last = default_range(end)
    return start or first, last


def report_command(engine: Engine, first: date, last: date, out: Path | None) -> list[str]:
    """Write the report; the lines saying where it is and what it holds."""
    # the checks' warning line; imported here so the rest of the CLI does not pay for Dagster
    from pipelines import settings

    path = out or Path(f"deployment-report-{first}-to-{last}.html")
    report = write_report(engine, first, last, path, settings.max_unclassified_share())
    summary = report.summary()
    rate = summary["success_rate"]
    return [
        f"report {first}..{last}: {summary['attempts']} attempts, "
        f"success rate {'-' if rate is None else f'{float(rate):.1%}'}, "
        f"{summary['in_progress']} in progress, {summary['days_without_data']} day(s) without data",
        f"wrote {path.resolve()} ({report.bytes / 1024:.0f} KiB); open it in a browser",
    ]
