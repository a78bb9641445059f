"""The pipeline runs as least-privilege roles: the loader writes the raw layer only, the
transformer rebuilds the marts only, the BI reader reads analytics only."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from pipelines.assets.deployments import deployment_marts
from pipelines.assets.events import service_events, services
from pipelines.assets.report import deployment_report
from pipelines.definitions import build_resources
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.sql_files import read_sql
from tests.integration.conftest import simulator_days

pytestmark = pytest.mark.integration

ROLES = ("modelarts_loader", "modelarts_transformer", "analytics_reader")


def _as(url: str, role: str, password: str) -> str:
    return make_url(url).set(username=role, password=password).render_as_string(hide_password=False)


@pytest.fixture
def role_urls(engine: Engine, database_url: str) -> Iterator[dict[str, str]]:
    """Grant scripts applied by the owner; a fresh password per role (never in the scripts)."""
    password = secrets.token_hex(16)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for script in ("grant_loader.sql", "grant_transformer.sql", "grant_analytics_reader.sql"):
            conn.execute(read_sql(f"grants/{script}"))
        for role in ROLES:
            conn.execute(
                psycopg.sql.SQL("alter role {} login password {}").format(
                    psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
                )
            )
    yield {role: _as(database_url, role, password) for role in ROLES}


def _refused(url: str, statement: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_pipeline_runs_as_loader_and_transformer(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    role_urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DATABASE_URL", role_urls["modelarts_loader"])
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", role_urls["modelarts_transformer"])
    monkeypatch.setenv("PIPELINES_DATA_DIR", str(tmp_path))
    instance, resources = DagsterInstance.ephemeral(), build_resources()
    assets = [services, service_events, deployment_marts, deployment_report]
    assert materialize(
        assets, selection=["services"], instance=instance, resources=resources
    ).success
    day = simulator_days(simulator)[1]
    selection = [
        "service_events",
        *(k.to_user_string() for k in deployment_marts.keys),
        "deployment_report",
    ]
    result = materialize(
        assets, selection=selection, partition_key=day, instance=instance, resources=resources
    )
    assert result.success
    # the report, drawn as the transformer, reads the load audit too
    assert (tmp_path / "reports" / f"deployment-report-{day}.html").is_file()
    # and so does `modelarts-etl report` with the loader's DATABASE_URL beside it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELARTS_", "HUAWEICLOUD_"))}
    out = tmp_path / "cli-report.html"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "report", "--start", day, "--end", day,
         "--out", str(out)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert out.is_file()
    with psycopg.connect(role_urls["analytics_reader"]) as conn:
        attempts = conn.execute("select count(*) from analytics.deployment_attempts").fetchone()
    assert attempts is not None and attempts[0] > 0

    loader = role_urls["modelarts_loader"]
    assert _refused(loader, "select count(*) from analytics.deployment_attempts")
    assert _refused(loader, "delete from service_events")
    assert _refused(loader, "drop table service_events")
    assert _refused(loader, "create table intruder (a int)")
    transformer = role_urls["modelarts_transformer"]
    assert _refused(transformer, "delete from service_events")
    assert _refused(
        transformer, "insert into load_batches (window_start_ms, window_end_ms) values (0, 1)"
    )
    reader = role_urls["analytics_reader"]
    assert _refused(reader, "select count(*) from service_events")
    assert _refused(reader, "delete from analytics.deployment_attempts")


def test_a_pending_migration_tells_the_loader_to_ask_the_owner(
    engine: Engine, role_urls: dict[str, str], tmp_path: object
) -> None:
    from pipelines.warehouse.database import create_warehouse_engine
    from pipelines.warehouse.migrations import apply_migrations, discover_migrations

    folder = Path(str(tmp_path))
    for migration in discover_migrations():
        (folder / migration.path.name).write_bytes(migration.path.read_bytes())
    (folder / "9999_create_extra.sql").write_text("create table extra (a int);")
    loader = create_warehouse_engine(role_urls["modelarts_loader"])
    try:
        with pytest.raises(RuntimeError, match="modelarts-etl migrate"):
            apply_migrations(loader, folder)
    finally:
        loader.dispose()


def test_the_bi_reader_reads_the_services_names_and_nobody_writes_them_through_the_view(
    role_urls: dict[str, str], database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(
            "insert into services (service_id, service_name, status, owner, generation)"
            " values ('svc-1', 'churn-model', 'running', 'team-a', 'v1'),"
            " ('svc-2', 'ocr', 'RUNNING', null, 'v2')"
        )
    with psycopg.connect(role_urls["analytics_reader"]) as conn:
        rows = conn.execute(
            "select service_id, name, owner, generation, status from analytics.services"
            " order by service_id"
        ).fetchall()
    assert rows == [
        ("svc-1", "churn-model", "team-a", "v1", "running"),
        ("svc-2", "ocr", None, "v2", "RUNNING"),
    ]
    reader, transformer = role_urls["analytics_reader"], role_urls["modelarts_transformer"]
    assert _refused(reader, "select count(*) from services")  # the view, not the table
    with psycopg.connect(reader) as conn:  # five columns: nothing else of the raw listing
        columns = conn.execute("select * from analytics.services limit 0").description
    names = [c.name for c in columns or []]
    assert names == ["service_id", "name", "owner", "generation", "status"]
    for url in (reader, transformer):
        assert _refused(url, "update analytics.services set name = 'x'")
        assert _refused(url, "delete from analytics.services")
        assert _refused(url, "insert into analytics.services (service_id) values ('svc-3')")
    with psycopg.connect(transformer) as conn:  # the marts' role reads it, as BI does
        read = conn.execute("select name from analytics.services order by name").fetchall()
    assert read == [("churn-model",), ("ocr",)]
