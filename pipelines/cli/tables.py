"""The tables the CLI prints: a row per day as its load commits, the deployment attempts per day
after a run, and `status`'s row per day."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from pipelines import settings
from pipelines.cli.errors import one_line

if TYPE_CHECKING:
    from pipelines.operate import DayStatus, ServiceCheck

DAY_HEADER = (
    f"{'day':<12}{'services':>9}{'fetched':>10}{'inserted':>10}"
    f"{'already':>10}{'quarantined':>13}{'seconds':>9}"
)


def day_row(key: str, meta: dict[str, Any]) -> str:
    """A day's load, under DAY_HEADER."""
    return (
        f"{key:<12}{meta['services']:>9}{meta['fetched']:>10}{meta['inserted']:>10}"
        f"{meta['already_present']:>10}{meta['quarantined']:>13}"
        f"{meta['seconds']:>9.2f}"
    )


def v2_day_row(key: str, meta: dict[str, Any]) -> str:
    """A day's v2 load: its own line (never starting with the day, so the v1 rows stay the
    lines that do)."""
    return (
        f"v2 {key}: {meta['records']} records, {meta['records_new']} new, "
        f"{meta['records_changed']} changed, {meta['records_unchanged']} unchanged, "
        f"{meta['records_regressed']} regressed, {meta['quarantined']} quarantined"
    )


def print_outcomes(first: date, last: date) -> None:
    """After a run: per day, the deployment attempts that started on it, as the mart holds them
    (the marts' connection: a loader login may not read `analytics`)."""
    import psycopg

    from pipelines.operate import deployment_outcomes
    from pipelines.warehouse.database import create_warehouse_engine

    url = os.environ.get(settings.ANALYTICS_DATABASE_URL) or os.environ[settings.DATABASE_URL]
    engine = create_warehouse_engine(url, pool_size=1)
    try:
        days = deployment_outcomes(engine, first, last)
    except psycopg.Error as exc:
        print(f"deployment attempts not shown: {one_line(exc)}")
        return
    finally:
        engine.dispose()
    print("deployment attempts by UTC day of their start (analytics.deployment_outcomes_daily):")
    print(
        f"{'day':<12}{'attempts':>9}{'succeeded':>10}{'failed':>8}{'superseded':>11}"
        f"{'in progress':>12}{'success rate':>13}"
    )
    for d in days:
        rate = "-" if d.success_rate is None else f"{d.success_rate:.1%}"
        print(
            f"{d.day.isoformat():<12}{d.attempts:>9}{d.succeeded:>10}{d.failed:>8}"
            f"{d.superseded:>11}{d.in_progress:>12}{rate:>13}"
        )


def print_status(rows: Sequence[DayStatus]) -> None:
    """`status`: per day the last load and what is stored, the rule version and coverage."""
    print(
        f"{'day':<12}{'state':<15}{'last load':<11}{'finished (UTC)':<21}{'fetched':>9}"
        f"{'inserted':>10}{'quarantined':>13}{'throttled':>11}{'services':>10}{'events':>9}"
        f"{'rules':>7}{'coverage':>10}"
    )
    for r in rows:
        finished = (
            r.last_load_finished_at.strftime("%Y-%m-%d %H:%M:%S")
            if r.last_load_finished_at
            else "-"
        )
        print(
            f"{r.day.isoformat():<12}{r.state:<15}{r.last_load_status or 'never':<11}{finished:<21}"
            f"{_n(r.last_fetched):>9}{_n(r.last_inserted):>10}{_n(r.last_quarantined):>13}"
            f"{_n(r.last_throttled):>11}{r.services:>10}{r.events:>9}"
            f"{'-' if r.rule_version is None else f'v{r.rule_version}':>7}"
            f"{'-' if r.event_coverage is None else f'{r.event_coverage:.2%}':>10}"
        )
    if any(r.v2_last_load_status or r.v2_records for r in rows):
        # v2 (new-version services): a table of its own, so the v1 table keeps its columns
        print("v2 event records (service_event_records) by UTC day of their first occurrence:")
        print(f"{'day':<12}{'last v2 load':<14}{'new':>8}{'changed':>9}{'records':>9}")
        for r in rows:
            print(
                f"{r.day.isoformat():<12}{r.v2_last_load_status or 'never':<14}"
                f"{_n(r.v2_last_records_new):>8}{_n(r.v2_last_records_changed):>9}"
                f"{r.v2_records:>9}"
            )
    if any(r.state == "unrecoverable" for r in rows):
        print(
            "unrecoverable: never loaded, and wholly older than the API's retention "
            f"({settings.MODELARTS_RETENTION_DAYS}): its events are gone for good"
        )
    if any(r.state == "given up" for r in rows):
        from pipelines.catchup import MAX_ATTEMPTS

        print(
            f"given up: not loaded, and {MAX_ATTEMPTS} runs of the nightly job ended without it; "
            "the catch-up sensor no longer asks: `modelarts-etl rerun DAY` once the cause is fixed"
        )
    if any(r.last_load_status == "stale" for r in rows):
        print("stale: a load left `running` by a process that died; the next load of the day")
        print("takes it over (`modelarts-etl rerun DAY`, or the nightly run)")


def print_verify(day: date, checks: Sequence[ServiceCheck]) -> int:
    """`verify`: per service the API's count and the stored one; the services that differ."""
    print(f"{'service_id':<40}{'api':>4}{'api total':>10}{'stored':>8}  result")
    for c in checks:
        verdict = "ok" if c.matches else ("gone from API" if c.api_total is None else "DIFFERS")
        print(f"{c.service_id:<40}{c.generation:>4}{_n(c.api_total):>10}{c.stored:>8}  {verdict}")
    differing = sum(not c.matches for c in checks)
    print(f"{len(checks)} services, {differing} differ")
    if differing:
        print(
            f"`modelarts-etl rerun {day}` loads the day again and adds what is missing "
            "(nothing is doubled); a difference that stays is the API counting records the "
            "warehouse folded (duplicates) or quarantined (`modelarts-etl status` counts them)"
        )
    return differing


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
