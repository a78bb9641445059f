"""Every table, view and column of schema `analytics` carries a comment (README: BI users read
them with `\\d+`), on a database migrated by the project's own migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text

from tests.integration.conftest import MARTS

pytestmark = pytest.mark.integration

RELATIONS = {*MARTS, "failure_cause_rules"}

# Relations of every kind a BI tool lists (tables, partitioned tables, views, materialized and
# foreign tables): each relation's comment (column_name null), then each live column's.
COMMENTS = text(
    """
    with relations as (
        select pg_class.oid, pg_class.relname
        from pg_class
        inner join pg_namespace on pg_class.relnamespace = pg_namespace.oid
        where pg_namespace.nspname = 'analytics' and pg_class.relkind in ('r', 'p', 'v', 'm', 'f')
    )

    select
        relations.relname as relation,
        null as column_name,
        obj_description(relations.oid, 'pg_class') as comment
    from relations
    union all
    select
        relations.relname as relation,
        columns.attname as column_name,
        col_description(relations.oid, columns.attnum) as comment
    from relations
    inner join pg_attribute as columns
        on relations.oid = columns.attrelid and columns.attnum > 0 and not columns.attisdropped
    """
)


def uncommented(conn: Connection) -> tuple[set[str], set[str]]:
    """(every relation and relation.column of `analytics`, those without a non-blank comment)."""
    named = {
        (r.relation if r.column_name is None else f"{r.relation}.{r.column_name}"): r.comment
        for r in conn.execute(COMMENTS)
    }
    return set(named), {name for name, comment in named.items() if not (comment or "").strip()}


def test_every_analytics_table_and_column_has_a_comment(engine: Engine) -> None:
    with engine.connect() as conn:
        names, missing = uncommented(conn)
    assert names >= RELATIONS, "the marts should exist after the migrations"
    assert len(names) > len(RELATIONS) * 5, "columns should be listed, not only tables"
    assert not missing, f"analytics objects without a comment: {sorted(missing)}"


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        (
            "alter table analytics.deployment_attempts add column note text",
            "deployment_attempts.note",
        ),
        ("comment on column analytics.deployment_phases.model is ''", "deployment_phases.model"),
        ("comment on column analytics.deployment_phases.model is '  '", "deployment_phases.model"),
        ("create view analytics.recent as select 1 as n", "recent"),
    ],
)
def test_a_missing_or_blank_comment_is_found(engine: Engine, ddl: str, expected: str) -> None:
    with engine.connect() as conn:
        conn.execute(text(ddl))
        _, missing = uncommented(conn)
        conn.rollback()
    assert expected in missing
