"""`modelarts-etl reclassify --start D --end D`: rebuild the deployment marts of a range of days
with the current event text rules, after the rules file changed.

Day by day, oldest first, each day in its own transaction (the rebuild of one day: memory is
bounded by a day's scope, whatever the range), one progress line per day. Idempotent: running it
again changes nothing; a day interrupted rolls back whole and the next run redoes it.
`modelarts-etl status` then shows the rule version that built each day.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `modelarts-etl --help` does not pay for the warehouse imports
    from sqlalchemy import Engine

    from pipelines.warehouse.marts import MartRefresh


def days_between(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def reclassify_days(
    engine: Engine, first: date, last: date, progress: Callable[[MartRefresh], None]
) -> list[MartRefresh]:
    """Rebuild the marts of every day from `first` to `last` (inclusive), oldest first."""
    from pipelines.warehouse.marts import rebuild_marts

    refreshes = []
    for day in days_between(first, last):
        refresh = rebuild_marts(engine, [day])
        progress(refresh)
        refreshes.append(refresh)
    return refreshes


def progress_line(refresh: MartRefresh) -> str:
    coverage = "-" if refresh.event_coverage is None else f"{refresh.event_coverage:.2%}"
    version = "-" if refresh.rule_version is None else f"v{refresh.rule_version}"
    return (
        f"{refresh.day.isoformat():<12}{version:>6}{refresh.events_read:>10}"
        f"{refresh.unclassified_events:>9}{coverage:>10}{refresh.attempts:>10}"
        f"{refresh.seconds:>9.2f}"
    )


HEADER = (
    f"{'day':<12}{'rules':>6}{'events':>10}{'unknown':>9}{'coverage':>10}{'attempts':>10}"
    f"{'seconds':>9}"
)


def reclassify_command(args: argparse.Namespace) -> int:
    """The CLI command: the warehouse from the environment, the days from --start/--end."""
    from pipelines.cli.environment import environment, read_engine
    from pipelines.cli.errors import CliError

    if args.end < args.start:
        raise CliError(f"--end {args.end} is before --start {args.start}")
    with environment(args, api=False):
        engine = read_engine()
        started = time.perf_counter()
        print(HEADER, flush=True)
        refreshes = reclassify_days(
            engine, args.start, args.end, lambda r: print(progress_line(r), flush=True)
        )
    versions = sorted({r.rule_version for r in refreshes if r.rule_version is not None})
    print(
        f"reclassified {len(refreshes)} days ({args.start}..{args.end}) with rule version "
        f"{', '.join(f'v{v}' for v in versions) or '-'} in {time.perf_counter() - started:.1f} s"
    )
    return 0


def print_rule_version(database_url: str) -> None:
    """`migrate`'s line on the event text rules the marts apply now."""
    import psycopg

    from pipelines.warehouse.database import libpq_url
    from pipelines.warehouse.rules import latest_rule_version

    try:
        with psycopg.connect(libpq_url(database_url)) as conn:
            rules = latest_rule_version(conn)
    except psycopg.errors.InsufficientPrivilege:
        return  # a loader login may not read analytics; the owner's `migrate` says it
    if rules is not None:
        print(
            f"event text rules: version {rules.version} ({rules.rules} rules, sha256 "
            f"{rules.checksum[:12]}); `modelarts-etl reclassify` applies them to past days"
        )
