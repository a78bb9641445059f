"""Partitions: one per UTC day; a partition is the window [day 00:00, next day 00:00)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from dagster import DailyPartitionsDefinition

from pipelines import settings
from pipelines.windows import TimeWindow

# PIPELINES_PARTITIONS_START, else 30 days before today: read when the code is loaded.
PARTITIONS_START = settings.partitions_start()

daily_partitions = DailyPartitionsDefinition(
    start_date=PARTITIONS_START.isoformat(), timezone="UTC", fmt="%Y-%m-%d"
)


def to_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def day_windows(start: datetime, end: datetime) -> Iterator[tuple[str, TimeWindow]]:
    """The UTC days of [start, end) as (partition key, window in epoch ms)."""
    day = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while day < end:
        following = day + timedelta(days=1)
        yield day.strftime("%Y-%m-%d"), TimeWindow(to_ms(day), to_ms(following))
        day = following
