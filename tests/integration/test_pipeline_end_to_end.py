"""Simulator over HTTP -> Dagster assets -> Postgres, compared with the simulator's own truth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize

from pipelines.assets.events import service_events, services
from pipelines.assets.partitions import daily_partitions
from pipelines.definitions import build_definitions, build_resources
from pipelines.simulator.process import SimulatorInfo
from tests.integration.conftest import (
    MARTS,
    bare_environ,
    expected_events,
    simulator_days,
    stored_events,
)

pytestmark = pytest.mark.integration


def _window_ms(day: str) -> tuple[int, int]:
    window = daily_partitions.time_window_for_partition_key(day)
    return int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)


def _materialize_days(days: list[str], instance: DagsterInstance) -> list[dict[str, object]]:
    resources = build_resources()
    assets = [services, service_events]
    assert materialize(
        assets, selection=["services"], instance=instance, resources=resources
    ).success
    metas: list[dict[str, object]] = []
    for day in days:
        result = materialize(
            assets,
            selection=["service_events"],
            partition_key=day,
            instance=instance,
            resources=resources,
        )
        assert result.success
        # the node records `services` too (the services it upserts): pick service_events' own
        [mat] = [
            m
            for m in result.asset_materializations_for_node("service_events")
            if m.asset_key.to_user_string() == "service_events"
        ]
        metas.append({k: v.value for k, v in mat.metadata.items()})
    return metas


def test_definitions_load(pipeline_env: dict[str, str]) -> None:
    defs = build_definitions()
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {"services", "service_events", *MARTS, "deployment_report"}
    # the repository resolves (every asset's resources bound) with the nightly job, its
    # schedule, the failure sensor and the catch-up sensor
    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs()} == {"__ASSET_JOB", "nightly"}
    assert [s.name for s in repository.schedule_defs] == ["nightly_schedule"]
    assert [s.job_name for s in repository.schedule_defs] == ["nightly"]
    assert [s.name for s in repository.sensor_defs] == [
        "alert_on_run_failure",
        "catch_up_missed_days",
    ]
    assert sorted(repository.get_top_level_resources()) == ["alerts", "modelarts", "warehouse"]


def test_a_run_on_an_unmigrated_warehouse_fails_at_once_naming_migrate(
    simulator: SimulatorInfo, pipeline_env: dict[str, str]
) -> None:
    # The nightly job as the daemon launches it never migrates: its first step that needs the
    # warehouse fails, unretried, on one line naming the owner's command; nothing is created.
    nightly = build_definitions().resolve_job_def("nightly")
    result = nightly.execute_in_process(
        partition_key=simulator_days(simulator)[0],
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["service_events"]  # the marts after it never start
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    data = failures[0].step_failure_data
    failure = data.user_failure_data if data else None
    description = (failure.description if failure else "") or ""
    assert "\n" not in description
    assert "pending migration(s) (0001.." in description
    assert description.endswith("run `modelarts-etl migrate` as the schema owner")
    with psycopg.connect(pipeline_env["DATABASE_URL"]) as conn:
        tables = conn.execute(
            "select count(*) from pg_tables where schemaname not in ('pg_catalog',"
            " 'information_schema')"
        ).fetchone()
    assert tables == (0,)


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_days_land_exactly_the_simulators_events_and_a_rerun_inserts_nothing(
    simulator: SimulatorInfo, pipeline_env: dict[str, str]
) -> None:
    days = simulator_days(simulator)
    assert len(days) == 3
    instance = DagsterInstance.ephemeral()
    first = _materialize_days(days, instance)
    start_ms, end_ms = _window_ms(days[0])[0], _window_ms(days[-1])[1]
    expected = expected_events(simulator, start_ms, end_ms)
    assert expected, "the simulator's history should not be empty"
    assert stored_events(pipeline_env["DATABASE_URL"]) == expected
    assert sum(int(m["inserted"]) for m in first) == len(expected)  # type: ignore[call-overload]

    second = _materialize_days(days, instance)
    assert [m["inserted"] for m in second] == [0, 0, 0]
    assert sum(int(m["already_present"]) for m in second) == len(expected)  # type: ignore[call-overload]
    assert stored_events(pipeline_env["DATABASE_URL"]) == expected


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_each_day_holds_only_its_own_window(
    simulator: SimulatorInfo, pipeline_env: dict[str, str]
) -> None:
    day = simulator_days(simulator)[1]
    _materialize_days([day], DagsterInstance.ephemeral())
    start_ms, end_ms = _window_ms(day)
    assert stored_events(pipeline_env["DATABASE_URL"]) == expected_events(
        simulator, start_ms, end_ms
    )


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_one_partition_materializes_from_the_dagster_cli(
    simulator: SimulatorInfo, pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    day = simulator_days(simulator)[0]
    env = {**os.environ, **pipeline_env, "DAGSTER_HOME": str(tmp_path)}
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "pipelines.definitions",
        "--select",
        "service_events",
        "--partition",
        day,
    ]
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    start_ms, end_ms = _window_ms(day)
    assert stored_events(pipeline_env["DATABASE_URL"]) == expected_events(
        simulator, start_ms, end_ms
    )
    assert pipeline_env["HUAWEICLOUD_SDK_SK"] not in done.stdout + done.stderr


def test_the_main_command_runs_on_embedded_defaults_and_reruns_to_zero(tmp_path: Path) -> None:
    """The README's first command, minus the install: simulator + embedded Postgres + Dagster."""
    env = {**bare_environ(), "PIPELINES_DATA_DIR": str(tmp_path / "data")}
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--sim-services",
        "6",
        "--sim-days",
        "2",
    ]
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        outputs.append(done.stdout)
    loads, attempts = zip(
        *(out.split("deployment attempts by UTC day") for out in outputs), strict=True
    )
    first_rows = [line.split() for line in loads[0].splitlines() if line[:2] == "20"]
    second_rows = [line.split() for line in loads[1].splitlines() if line[:2] == "20"]
    assert len(first_rows) == len(second_rows) == 2
    # the marts' attempts per day, the same on both runs (a rerun changes nothing)
    days = [line for line in attempts[0].splitlines() if line[:2] == "20"]
    assert attempts[0] == attempts[1] and len(days) == 2
    # the Dagster instance is in the data directory, nothing in the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert (tmp_path / "data" / "dagster_home" / "history" / "runs.db").is_file()
    assert sum(int(r[3]) for r in first_rows) > 0  # inserted on the first run
    assert [int(r[3]) for r in second_rows] == [0, 0]  # nothing inserted on the second
    assert [int(r[4]) for r in second_rows] == [int(r[3]) for r in first_rows]
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").is_file()
