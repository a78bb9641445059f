"""A CLI run's Dagster instance keeps its SQLite event log's connections (pipelines/cli/
event_log.py): the run's events land in Dagster's own files, where another instance of the same
DAGSTER_HOME (the UI, the daemon) reads them all, asset materializations included; other storages
are left alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from dagster import AssetMaterialization, DagsterInstance, job, op
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from pipelines.cli import event_log, runs

MATERIALIZED = 12


@op
def materialize_some(context) -> None:  # Dagster reads the hint: none
    for i in range(MATERIALIZED):
        context.log_event(AssetMaterialization(f"probe_{i}"))


@job
def probe() -> None:
    materialize_some()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setattr(runs, "_instances", {})
    return tmp_path


def test_a_cli_run_is_read_whole_by_another_instance_of_its_home(home: Path) -> None:
    instance = runs.dagster_instance()
    storage = instance.event_log_storage
    assert isinstance(storage, SqliteEventLogStorage)
    assert type(storage) is not SqliteEventLogStorage  # kept connections
    results = [probe.execute_in_process(instance=instance) for _ in range(2)]
    assert all(r.success for r in results)
    # while the CLI's connections are still open: the UI reads the run as it goes
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as reader:
        assert type(reader.event_log_storage) is SqliteEventLogStorage
        for result in results:
            assert reader.get_run_by_id(result.run_id).is_success  # type: ignore[union-attr]
            logged = reader.all_logs(result.run_id)
            assert len(logged) == len(instance.all_logs(result.run_id)) > MATERIALIZED
        keys = reader.get_asset_keys()
        assert {k.to_user_string() for k in keys} >= {f"probe_{i}" for i in range(MATERIALIZED)}
    event_log.close(storage)
    # closed: every event is in the database files themselves (the WAL checkpointed into them)
    run_db = home / "history" / "runs" / f"{results[0].run_id}.db"
    wal = run_db.with_name(run_db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(run_db) as conn:
        (stored,) = conn.execute("select count(*) from event_logs").fetchone()
    assert stored == len(instance.all_logs(results[0].run_id))  # reopened on use


def test_the_kept_connections_commit_without_waiting_for_the_disk(home: Path) -> None:
    instance = runs.dagster_instance()
    storage = instance.event_log_storage
    run_id = probe.execute_in_process(instance=instance).run_id  # its database made here
    for connection in (storage.index_connection(), storage.run_connection(run_id)):  # type: ignore[attr-defined]
        with connection as conn:
            (synchronous,) = conn.exec_driver_sql("PRAGMA synchronous").fetchone()
            (journal,) = conn.exec_driver_sql("PRAGMA journal_mode").fetchone()
        assert (synchronous, journal) == (1, "wal")  # NORMAL, in WAL mode: crash-safe
    event_log.close(storage)
    with sqlite3.connect(home / "history" / "runs" / f"{run_id}.db") as conn:
        (journal,) = conn.execute("PRAGMA journal_mode").fetchone()
        tables = {name for (name,) in conn.execute("select name from sqlite_master")}
    assert journal == "wal" and {"event_logs", "alembic_version"} <= tables


def test_a_database_in_rollback_journal_mode_keeps_full_sync(home: Path) -> None:
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as plain:
        run_id = probe.execute_in_process(instance=plain).run_id
    run_db = home / "history" / "runs" / f"{run_id}.db"
    with sqlite3.connect(run_db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    storage = runs.dagster_instance().event_log_storage
    with storage.run_connection(run_id) as conn:  # type: ignore[attr-defined]
        (synchronous,) = conn.exec_driver_sql("PRAGMA synchronous").fetchone()
    assert synchronous == 2  # FULL: NORMAL could corrupt it on a power loss
    event_log.close(storage)


def test_other_event_logs_are_left_as_they_are() -> None:
    class Mine(SqliteEventLogStorage):
        pass

    assert event_log.speed_up(object()) is False
    mine = Mine.__new__(Mine)
    assert event_log.speed_up(mine) is False and type(mine) is Mine
