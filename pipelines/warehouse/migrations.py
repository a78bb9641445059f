"""Apply the versioned SQL files of `sql/migrations/` in order, each once."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine

from pipelines.warehouse.rules import sync_event_text_rules
from pipelines.warehouse.sql_files import sql_root
from pipelines.warehouse.transactions import pooled_connection

log = logging.getLogger(__name__)

# Any constant works: it only has to be the same for every process migrating this database.
_MIGRATION_LOCK_KEY = 7_345_190_112


class MigrationPendingError(RuntimeError):
    """A migration is pending and this role may not apply it: the schema owner must."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover_migrations(folder: Path | None = None) -> list[Migration]:
    """The migration files, ordered by their numeric prefix (`0001_create_x.sql`)."""
    folder = folder or sql_root() / "migrations"
    found = []
    for path in sorted(folder.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit():
            raise ValueError(f"migration file without a numeric prefix: {path.name}")
        found.append(Migration(version=version, name=name, path=path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version in {folder}")
    return found


def pending_migrations(engine: Engine, folder: Path | None = None) -> list[str]:
    """The versions not applied yet, read without changing anything (for read-only commands):
    every version when the database has no `schema_migrations` table."""
    migrations = discover_migrations(folder)
    with engine.connect() as conn:
        present = conn.exec_driver_sql("select to_regclass('schema_migrations')").scalar()
        done = (
            set(conn.exec_driver_sql("select version from schema_migrations").scalars())
            if present is not None
            else set()
        )
    return [m.version for m in migrations if m.version not in done]


def apply_migrations(engine: Engine, folder: Path | None = None) -> list[str]:
    """Apply pending migrations; returns the versions applied now.

    Safe to call from concurrent processes: an advisory lock serialises them, and each file
    commits together with its row in `schema_migrations`. A file changed after it was applied
    is an error rather than silently ignored.
    """
    migrations = discover_migrations(folder)
    applied_now: list[str] = []
    # autocommit: the advisory lock is the session's, and each file commits on its own
    with pooled_connection(engine, autocommit=True) as raw:
        raw.execute("select pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            # Checked first: a least-privilege role (the loader) may not CREATE, even "if not
            # exists"; it only needs to see that nothing is pending.
            present = raw.execute("select to_regclass('schema_migrations')").fetchone()
            if present is None or present[0] is None:
                raw.execute(
                    "create table schema_migrations ("
                    " version text primary key, name text not null, checksum text not null,"
                    " applied_at timestamptz not null default now())"
                )
            done = dict(raw.execute("select version, checksum from schema_migrations").fetchall())
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.path.name} changed after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                try:
                    with raw.transaction():
                        raw.execute(migration.path.read_text(encoding="utf-8"))
                        raw.execute(
                            "insert into schema_migrations (version, name, checksum)"
                            " values (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise MigrationPendingError(
                        f"migration {migration.path.name} is pending and this role may not "
                        f"apply it ({exc.diag.message_primary}); run `modelarts-etl migrate` "
                        "as the schema owner"
                    ) from None
                log.info("applied migration %s", migration.path.name)
                applied_now.append(migration.version)
            _load_event_text_rules(raw)
        finally:
            raw.execute("select pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied_now


def _load_event_text_rules(raw: psycopg.Connection[Any]) -> None:
    """Load sql/rules/event_text_rules.tsv as a new rule version when it changed (under the
    migration lock). A role that may not write the rule tables (the loader) leaves it to others."""
    # the loader role may not even see schema analytics: ask the catalog, not the table
    writable = raw.execute(
        "select has_table_privilege(rel.oid, 'INSERT') from pg_class as rel"
        " inner join pg_namespace as ns on rel.relnamespace = ns.oid"
        " where ns.nspname = 'analytics' and rel.relname = 'event_text_rule_versions'"
    ).fetchone()
    if writable is None or not writable[0]:
        return
    with raw.transaction():
        sync_event_text_rules(raw)
