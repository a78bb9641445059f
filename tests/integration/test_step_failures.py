"""Steps retry transient failures only: errors raised by a real Postgres are sorted by SQLSTATE
(or by the server's FATAL answer when a connection fails), and a permanent one fails the step at
once, under a RetryPolicy, with one line that says what to do."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from dagster import DagsterEventType, Failure, RetryPolicy, job, op
from psycopg import sql
from sqlalchemy.engine import make_url

from pipelines.cli import main
from pipelines.failures import (
    failing_fast,
    is_transient,
    loader_connection,
    permanent_failure_message,
    transformer_connection,
)
from pipelines.simulator.process import SimulatorInfo
from tests.integration.conftest import free_port, simulator_days

pytestmark = pytest.mark.integration


def _raised(action: Callable[[], object]) -> Exception:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("the statement did not fail")


@pytest.fixture
def intruder(database_url: str) -> Iterator[str]:
    """A role with no privilege on the test database's tables."""
    name = f"intruder_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {}").format(sql.Identifier(name)))
        conn.execute("create table raw_rows (a int)")
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("drop table raw_rows")
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def _as_role(database_url: str, role: str, statement: str) -> Exception:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        return _raised(lambda: conn.execute(statement))


def _statement(database_url: str, statement: str) -> Exception:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return _raised(lambda: conn.execute(statement))


def _lock_timeout(database_url: str) -> Exception:
    with (
        psycopg.connect(database_url) as holder,
        psycopg.connect(database_url, autocommit=True) as waiter,
    ):
        holder.execute("create table if not exists locked (a int)")
        holder.commit()
        holder.execute("lock table locked in access exclusive mode")
        waiter.execute("set lock_timeout = '50ms'")
        return _raised(lambda: waiter.execute("select * from locked"))


def _terminated(database_url: str) -> Exception:
    with (
        psycopg.connect(database_url, autocommit=True) as victim,
        psycopg.connect(database_url, autocommit=True) as admin,
    ):
        pid = victim.info.backend_pid
        admin.execute("select pg_terminate_backend(%s)", (pid,))
        return _raised(lambda: victim.execute("select 1"))


def _refused() -> Exception:
    port = free_port()  # nothing listens on it
    return _raised(lambda: psycopg.connect(f"postgresql://x@127.0.0.1:{port}/x", connect_timeout=5))


def _other_database(database_url: str, **changes: str) -> Exception:
    url = make_url(database_url).set(**changes).render_as_string(hide_password=False)  # type: ignore[arg-type]
    return _raised(lambda: psycopg.connect(url))


def test_database_errors_are_sorted_by_sqlstate(database_url: str, intruder: str) -> None:
    permanent = {
        "insufficient_privilege": _as_role(database_url, intruder, "select * from raw_rows"),
        "undefined_table": _statement(database_url, "select * from no_such_table"),
        "undefined_column": _statement(database_url, "select no_such_column from raw_rows"),
        "invalid_catalog": _other_database(database_url, database="no_such_database"),
        "unknown_role": _other_database(database_url, username="no_such_role"),
    }
    transient = {
        "lock_not_available": _lock_timeout(database_url),
        "connection_terminated": _terminated(database_url),
        "connection_refused": _refused(),
    }
    assert {name: is_transient(e) for name, e in permanent.items()} == dict.fromkeys(
        permanent, False
    )
    assert {name: is_transient(e) for name, e in transient.items()} == dict.fromkeys(
        transient, True
    )
    assert permanent["insufficient_privilege"].sqlstate == "42501"  # type: ignore[attr-defined]
    assert transient["lock_not_available"].sqlstate == "55P03"  # type: ignore[attr-defined]

    loader = loader_connection("postgresql://etl_loader:pw@db/wh")
    marts_as_loader = transformer_connection("postgresql://etl_loader:pw@db/wh", None)
    privilege = permanent["insufficient_privilege"]
    assert permanent_failure_message(privilege, loader) == (
        "permission denied for table raw_rows as role etl_loader (DATABASE_URL): the login "
        "needs role modelarts_loader (grant modelarts_loader to etl_loader), and run "
        "`modelarts-etl migrate --grants` as the schema owner"
    )
    assert permanent_failure_message(privilege, marts_as_loader).startswith(
        "permission denied for table raw_rows as role etl_loader (DATABASE_URL): set "
        "ANALYTICS_DATABASE_URL to a login in role modelarts_transformer"
    )
    assert "run `modelarts-etl migrate` as the schema owner" in permanent_failure_message(
        permanent["undefined_column"], loader
    )
    assert permanent_failure_message(permanent["invalid_catalog"], loader) == (
        'database "no_such_database" does not exist (DATABASE_URL): check the database name in it'
    )
    assert permanent_failure_message(permanent["unknown_role"], loader) == (
        'role "no_such_role" does not exist (DATABASE_URL): check the user and password in it'
    )


def _attempts(error: Exception) -> tuple[dict[DagsterEventType, int], str | None]:
    """Run a one-op job with a RetryPolicy whose op raises `error` through failing_fast."""

    @op(retry_policy=RetryPolicy(max_retries=2, delay=0))
    def failing_op() -> None:
        with failing_fast(loader_connection("postgresql://etl_loader@db/wh")):
            raise error

    @job
    def one_op() -> None:
        failing_op()

    result = one_op.execute_in_process(raise_on_error=False)
    # an attempt starts with STEP_START, a retry of it with STEP_RESTARTED
    counts = dict.fromkeys(
        (
            DagsterEventType.STEP_START,
            DagsterEventType.STEP_RESTARTED,
            DagsterEventType.STEP_UP_FOR_RETRY,
        ),
        0,
    )
    description = None
    for event in result.all_events:
        if event.event_type in counts:
            counts[event.event_type] += 1
        if event.is_step_failure and event.step_failure_data:
            user = event.step_failure_data.user_failure_data
            description = user.description if user else None
    assert not result.success
    return counts, description


def test_a_permanent_error_fails_the_step_once_and_a_transient_one_is_retried(
    database_url: str, intruder: str, caplog: pytest.LogCaptureFixture
) -> None:
    denied = _as_role(database_url, intruder, "select * from raw_rows")
    counts, description = _attempts(denied)
    assert counts == {
        DagsterEventType.STEP_START: 1,
        DagsterEventType.STEP_RESTARTED: 0,
        DagsterEventType.STEP_UP_FOR_RETRY: 0,
    }
    assert description is not None and description.startswith(
        "permission denied for table raw_rows as role etl_loader (DATABASE_URL)"
    )
    assert "\n" not in description

    caplog.set_level("WARNING", logger="pipelines.failures")
    counts, description = _attempts(_lock_timeout(database_url))
    said = [r.getMessage() for r in caplog.records if r.name == "pipelines.failures"]
    assert len(said) == 3  # each attempt says why it will be retried: no silent waits
    assert all("transient failure" in m and "lock timeout" in m for m in said), said
    assert counts == {
        DagsterEventType.STEP_START: 1,
        DagsterEventType.STEP_RESTARTED: 2,
        DagsterEventType.STEP_UP_FOR_RETRY: 2,
    }
    assert description is None  # Dagster's own failure after the retries


def test_a_failure_raised_on_purpose_passes_through() -> None:
    with pytest.raises(Failure, match="as is"), failing_fast():
        raise Failure("as is")


def test_refused_api_credentials_fail_the_command_at_once(
    simulator: SimulatorInfo,
    pipeline_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI's signed pre-flight request meets the refusal before any run starts; a run that
    # meets it (Dagster alone) fails once, unretried: tests/integration/test_auth_connect.py.
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "not-the-secret-key-42")
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["rerun", simulator_days(simulator)[1]]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, out + err
    assert "the API refused AK/SK" in err and "HUAWEICLOUD_SDK_SK" in err
    assert "not-the-secret-key-42" not in err
