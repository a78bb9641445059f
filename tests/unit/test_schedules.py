"""The nightly schedule: which days a tick asks for, with which tags."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import RunRequest, build_schedule_context

from pipelines.assets.schedules import build_nightly_schedule, nightly_days
from pipelines.settings import NightlySchedule


@pytest.mark.parametrize(
    ("tick", "lookback", "expected"),
    [
        (datetime(2026, 11, 29, 0, 30, tzinfo=UTC), 2, ("2026-11-26", "2026-11-28")),
        (datetime(2026, 11, 29, 0, 30, tzinfo=UTC), 0, ("2026-11-28", "2026-11-28")),
        (datetime(2026, 3, 1, 0, 30, tzinfo=UTC), 1, ("2026-02-27", "2026-02-28")),
        # 00:30 in Shanghai is 16:30 UTC the day before: the last complete UTC day is two back.
        (
            datetime(2026, 11, 29, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
            0,
            ("2026-11-27", "2026-11-27"),
        ),
        # never before the first partition
        (datetime(2024, 1, 2, 0, 30, tzinfo=UTC), 5, ("2024-01-01", "2024-01-01")),
    ],
)
def test_nightly_days(tick: datetime, lookback: int, expected: tuple[str, str]) -> None:
    first, last = nightly_days(tick, lookback)
    assert (first.isoformat(), last.isoformat()) == expected


def test_a_tick_requests_yesterday_and_the_lookback_as_one_range_run() -> None:
    schedule = build_nightly_schedule(NightlySchedule(cron="30 0 * * *", lookback_days=2))
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
    )
    request = schedule.evaluate_tick(context).run_requests
    assert request is not None and len(request) == 1
    run: RunRequest = request[0]
    assert run.run_key == "nightly-2026-11-28"
    assert run.tags["dagster/asset_partition_range_start"] == "2026-11-26"
    assert run.tags["dagster/asset_partition_range_end"] == "2026-11-28"
    assert run.tags["pipelines/trigger"] == "nightly"
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.job_name == "nightly"


def test_cron_and_timezone_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import settings

    monkeypatch.setenv(settings.NIGHTLY_CRON, "15 2 * * *")
    monkeypatch.setenv(settings.NIGHTLY_TIMEZONE, "Europe/Berlin")
    monkeypatch.setenv(settings.NIGHTLY_LOOKBACK_DAYS, "5")
    config = settings.nightly_schedule()
    assert config == NightlySchedule("15 2 * * *", "Europe/Berlin", 5)
    schedule = build_nightly_schedule(config)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 2 * * *", "Europe/Berlin")
