"""Migrations apply in order, once each, and safely from concurrent processes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.migrations import apply_migrations, discover_migrations

pytestmark = pytest.mark.integration


def test_migrations_apply_once_and_record_themselves(database_url: str) -> None:
    engine = create_warehouse_engine(database_url)
    versions = [m.version for m in discover_migrations()]
    assert apply_migrations(engine) == versions
    assert apply_migrations(engine) == []
    with engine.connect() as conn:
        recorded = conn.execute(text("select version from schema_migrations order by 1")).scalars()
        assert list(recorded) == versions
    engine.dispose()


def test_concurrent_runners_apply_each_migration_exactly_once(database_url: str) -> None:
    engines = [create_warehouse_engine(database_url) for _ in range(4)]
    applied: list[list[str]] = []
    errors: list[BaseException] = []

    def migrate(i: int) -> None:
        try:
            applied.append(apply_migrations(engines[i]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(a) for a in applied) == [0, 0, 0, len(discover_migrations())]
    for e in engines:
        e.dispose()


def test_a_changed_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_create_t.sql").write_text("create table t (a int);")
    engine = create_warehouse_engine(database_url)
    apply_migrations(engine, tmp_path)
    (tmp_path / "0001_create_t.sql").write_text("create table t (a bigint);")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        apply_migrations(engine, tmp_path)
    engine.dispose()
