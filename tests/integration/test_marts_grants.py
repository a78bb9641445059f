"""The BI role reads the analytics schema and nothing else; its script can run twice."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from pipelines.warehouse.sql_files import read_sql

pytestmark = pytest.mark.integration


@pytest.mark.usefixtures("engine")  # migrated
def test_bi_role_reads_analytics_only(database_url: str) -> None:
    login = f"bi_{uuid.uuid4().hex[:8]}"
    readable = [
        sql.SQL("select count(*) from {}").format(sql.Identifier("analytics", table))
        for table in ("deployment_attempts", "failure_cause_rules")
    ]
    with psycopg.connect(database_url, autocommit=True) as admin:
        for _ in range(2):  # idempotent; run as `migrate --grants` runs it (no parameters)
            admin.execute(read_sql("grants/grant_analytics_reader.sql"))
        owner_counts = [admin.execute(query).fetchone() for query in readable]
        admin.execute(
            sql.SQL("create role {} login in role analytics_reader").format(sql.Identifier(login))
        )
    try:
        url = make_url(database_url).set(username=login, password=None)
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as bi:
            counts = [bi.execute(query).fetchone() for query in readable]
            assert counts == owner_counts  # every row, as the owner sees them
            for forbidden in (
                "select count(*) from service_events",
                "delete from analytics.deployment_attempts",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    bi.execute(forbidden)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))
