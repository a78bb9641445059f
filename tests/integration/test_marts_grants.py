"""The BI role reads the analytics schema and nothing else; its script can run twice."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from pipelines.warehouse.marts import apply_bi_grants

pytestmark = pytest.mark.integration


def test_bi_role_reads_analytics_only(engine: Engine, database_url: str) -> None:
    apply_bi_grants(engine)
    apply_bi_grants(engine)  # idempotent
    login = f"bi_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("create role {} login in role analytics_reader").format(sql.Identifier(login))
        )
    try:
        url = make_url(database_url).set(username=login, password=None)
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as bi:
            assert bi.execute("select count(*) from analytics.deployment_attempts").fetchone()
            assert bi.execute("select count(*) from analytics.failure_cause_rules").fetchone()
            for forbidden in (
                "select count(*) from service_events",
                "delete from analytics.deployment_attempts",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    bi.execute(forbidden)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))
