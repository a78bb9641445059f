"""A refused command names the database and the login that failed, and the fix that is right for
that login's role: least privilege first (the right login for the variable, never a second role
granted to the wrong one), CREATEROLE for an owner whose grant scripts create roles, and a
failure of Dagster's own storage (DAGSTER_PG_URL) told as such, never blamed on the warehouse."""

from __future__ import annotations

import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse.embedded import scratch_server
from pipelines.warehouse.sql_files import read_sql
from tests import REPO
from tests.integration.conftest import simulator_days

pytestmark = pytest.mark.integration

PROJECT_ROLES = {
    "loader": "modelarts_loader",
    "transformer": "modelarts_transformer",
    "reader": "analytics_reader",
}


def _url(url: str, **parts: str) -> str:
    return make_url(url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.fixture
def logins(engine: Engine, database_url: str) -> Iterator[dict[str, str]]:
    """A login in each project role (as deploy/README.md creates them), the grant scripts applied
    by the owner; login names unique (roles are shared by the server's databases)."""
    suffix, password = uuid.uuid4().hex[:8], secrets.token_hex(12)
    names = {kind: f"{kind}_{suffix}" for kind in PROJECT_ROLES}
    with psycopg.connect(database_url, autocommit=True) as owner:
        for script in ("grant_loader.sql", "grant_transformer.sql", "grant_analytics_reader.sql"):
            owner.execute(read_sql(f"grants/{script}"))
        for kind, role in PROJECT_ROLES.items():
            owner.execute(
                sql.SQL("create role {} login password {} in role {}").format(
                    sql.Identifier(names[kind]), sql.Literal(password), sql.Identifier(role)
                )
            )
    yield {
        kind: _url(database_url, username=name, password=password) for kind, name in names.items()
    }
    with psycopg.connect(database_url, autocommit=True) as owner:
        for name in names.values():
            owner.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a failed command (exit 1) prints."""
    assert main(argv) == 1, capsys.readouterr()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.usefixtures("clean_env")
def test_the_loader_running_report_is_told_to_set_the_transformers_url(
    logins: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", logins["loader"])
    err = _error(["report", "--start", "2026-11-18", "--end", "2026-11-18"], capsys)
    login = make_url(logins["loader"]).username
    assert f"permission denied for schema analytics as role {login} (DATABASE_URL)" in err
    assert "set ANALYTICS_DATABASE_URL to a login in role modelarts_transformer" in err
    assert "grant" not in err  # it has every grant its own role needs


@pytest.mark.usefixtures("clean_env")
def test_the_bi_reader_is_never_told_to_take_the_loaders_role(
    logins: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = logins["reader"]
    login = make_url(reader).username
    monkeypatch.setenv("DATABASE_URL", reader)
    # `db` only says where the warehouse is: the reader may run it
    assert main(["db"]) == 0
    out = capsys.readouterr().out
    assert "(DATABASE_URL; connect with its credentials)" in out
    # `report` needs the marts' role (it reads the load audit too)
    err = _error(["report", "--start", "2026-11-18", "--end", "2026-11-18"], capsys)
    assert f"as role {login} (DATABASE_URL)" in err
    assert "set ANALYTICS_DATABASE_URL to a login in role modelarts_transformer" in err
    assert "reads the analytics marts only" in err
    assert "grant" not in err
    # `status` reads the raw layer: the loader's login does, not this one
    err = _error(["status"], capsys)
    assert f"as role {login} (DATABASE_URL)" in err
    assert f"{login} is a login in analytics_reader" in err
    assert "set DATABASE_URL to a login in role modelarts_loader" in err
    assert "grant" not in err


def test_the_transformer_as_database_url_is_told_it_is_the_wrong_login(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    logins: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    transformer = logins["transformer"]
    login = make_url(transformer).username
    monkeypatch.setenv("DATABASE_URL", transformer)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert main(["rerun", simulator_days(simulator)[1]]) == 1
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "permission denied" in line]
    assert f"as role {login} (DATABASE_URL)" in line
    assert f"{login} is a login in modelarts_transformer, not modelarts_loader" in line
    assert "set DATABASE_URL to a login in role modelarts_loader" in line
    assert f"{login} belongs in ANALYTICS_DATABASE_URL" in line
    assert "grant" not in line


@pytest.mark.usefixtures("clean_env")
def test_an_owner_without_createrole_is_told_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # a server of its own: the project's roles must not exist yet (they are server-wide)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with scratch_server("owner-without-createrole-", tmp_path / "pg") as admin_url:
        password = secrets.token_hex(12)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"create role wh_owner login password '{password}'")  # no CREATEROLE
            admin.execute("create database warehouse owner wh_owner")
        owner = _url(admin_url, username="wh_owner", password=password, database="warehouse")
        monkeypatch.setenv("DATABASE_URL", owner)
        err = _error(["migrate", "--grants"], capsys)
    assert "permission denied to create role as role wh_owner (DATABASE_URL)" in err
    assert "give wh_owner CREATEROLE (`alter role wh_owner createrole`, as a superuser)" in err
    assert "owner's" not in err  # it is the owner


@pytest.fixture
def foreign_dagster_db(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    """A Dagster database its login does not own (no CREATE on its schema): the login's URL,
    and the same URL on psycopg 3 (`postgresql+psycopg://`)."""
    suffix, password = uuid.uuid4().hex[:8], secrets.token_hex(12)
    login, database = f"dagster_{suffix}", f"dagster_{suffix}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f"create role {login} login password '{password}'")
        admin.execute(f"create database {database}")  # owned by the admin
    url = _url(pg_admin_url, drivername="postgresql", username=login, password=password,
               database=database)  # fmt: skip
    yield url, login
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f"drop database if exists {database} with (force)")
        admin.execute(f"drop role if exists {login}")


@pytest.fixture
def owned_dagster_db(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    suffix, password = uuid.uuid4().hex[:8], secrets.token_hex(12)
    login, database = f"dagster_{suffix}", f"dagster_{suffix}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f"create role {login} login password '{password}'")
        admin.execute(f"create database {database} owner {login}")
    url = _url(pg_admin_url, drivername="postgresql+psycopg", username=login,
               password=password, database=database)  # fmt: skip
    yield url, login
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f"drop database if exists {database} with (force)")
        admin.execute(f"drop role if exists {login}")


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("case", ["not the owner", "psycopg 3 driver"])
def test_a_dagster_storage_error_names_dagster_pg_url_not_the_warehouse(
    case: str,
    request: pytest.FixtureRequest,
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixture = "foreign_dagster_db" if case == "not the owner" else "owned_dagster_db"
    url, login = request.getfixturevalue(fixture)
    shutil.copy(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    assert main(["rerun", simulator_days(simulator)[1]]) == 1
    out, err = capsys.readouterr()
    line = err or out
    assert f"in Dagster's storage as role {login} (DAGSTER_PG_URL)" in line, out + err
    assert "warehouse" not in line and "DATABASE_URL)" not in line
    if case == "not the owner":
        assert "permission denied for schema public" in line
        assert (
            f"the login must own Dagster's database (`create database dagster owner {login}`"
            in line
        )
    else:  # the error: dagster-postgres's NOTIFY on psycopg 3
        assert 'syntax error at or near "$1"' in line
        assert "write postgresql+psycopg2:// in DAGSTER_PG_URL" in line
