"""Which failures of a step are worth retrying, and the one line an operator reads for the others.

Dagster's `RetryPolicy` retries every exception a step raises. Only a transient failure can go
away by waiting: a lost connection, a serialization failure, a deadlock, a lock or wait timeout,
an API answering 429/5xx. A permanent one (no privilege, a missing table or column, refused
credentials, a missing database, a bad answer from the API, a bug) comes back on every retry,
after minutes of silent waits. `failing_fast` turns a permanent failure into a
`dagster.Failure(allow_retries=False)` whose description says what failed and what to do.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import requests
from sqlalchemy.engine import make_url

from pipelines import settings
from pipelines.source import errors as source_errors

log = logging.getLogger(__name__)

DAGSTER_PG_URL = "DAGSTER_PG_URL"

# SQLSTATE classes and codes that a retry can clear (PostgreSQL, Appendix A).
TRANSIENT_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "40",  # transaction rollback: serialization failure, deadlock
        "53",  # insufficient resources: too many connections, out of memory, disk full
        "57",  # operator intervention: admin shutdown, crash shutdown, cannot connect now
        "58",  # system error (I/O)
    }
)
TRANSIENT_SQLSTATES = frozenset({"55P03", "55006"})  # lock not available, object in use

# A server's FATAL reply to a connection attempt carries no SQLSTATE in libpq's message.
_TRANSIENT_FATAL = re.compile(
    r"too many (connections|clients)|the database system is (starting up|shutting down|"
    r"in recovery mode|not yet accepting connections)|terminating connection",
    re.IGNORECASE,
)

# The waits of pipelines/warehouse/loader.py, pipelines/dagster_runs.py and the extractor end
# with these: another run held the day or the pool, or the API went silent.
_TRANSIENT_BY_NAME = frozenset({"LoadLockTimeout", "PoolWaitTimeout"})
_TRANSIENT_SOURCE = (
    source_errors.TransientHTTPError,
    source_errors.RetriesExhaustedError,
    source_errors.RetryBudgetExhaustedError,
    source_errors.NotJSONBodyError,
    source_errors.ExtractionStalledError,
)
_TRANSIENT_HTTP = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


# The roles of sql/grants/, and the one the project's grant scripts need to be run by.
LOADER, TRANSFORMER, READER = "modelarts_loader", "modelarts_transformer", "analytics_reader"
PROJECT_ROLES = (LOADER, TRANSFORMER, READER)
OWNER = "the schema owner"


@dataclass(frozen=True)
class Connection:
    """The warehouse connection a step or command uses, to name it in messages: its variable,
    the role it logs in as, the role of sql/grants/ that login needs (or OWNER), and its URL
    (asked, on a permission error, what the login is: never shown)."""

    variable: str
    login: str | None
    needs_role: str
    url: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, database_url: str | None, variable: str, needs_role: str) -> Connection:
        login = make_url(database_url).username if database_url else None
        return cls(variable, login, needs_role, database_url)


@dataclass(frozen=True)
class Login:
    """What the login of a connection is: its roles of sql/grants/, whether it may create roles,
    whether it owns the warehouse schema (sql/ops/login_privileges.sql)."""

    member_of: frozenset[str]
    superuser: bool
    createrole: bool
    owns_schema: bool


def login_privileges(database_url: str | None) -> Login | None:
    """The login of `database_url` as the server sees it; None when it cannot be asked."""
    if not database_url:
        return None
    from pipelines.warehouse.database import libpq_url
    from pipelines.warehouse.sql_files import read_sql

    try:
        with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
            row = conn.execute(
                read_sql("ops/login_privileges.sql"), {"project_roles": list(PROJECT_ROLES)}
            ).fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    return Login(frozenset(row[0]), bool(row[1]), bool(row[2]), bool(row[3]))


def dagster_storage_connection() -> Connection:
    """Dagster's own storage: DAGSTER_PG_URL (deploy/dagster.yaml), not the warehouse."""
    return Connection.of(os.environ.get(DAGSTER_PG_URL) or None, DAGSTER_PG_URL, "")


def owner_connection(database_url: str | None) -> Connection:
    """`migrate`'s connection: DATABASE_URL, the schema owner's."""
    return Connection.of(database_url, settings.DATABASE_URL, OWNER)


def loader_connection(database_url: str | None) -> Connection:
    """The raw layer's connection: DATABASE_URL, a login in modelarts_loader."""
    return Connection.of(database_url, settings.DATABASE_URL, "modelarts_loader")


def transformer_connection(database_url: str | None, analytics_url: str | None) -> Connection:
    """The marts' connection: ANALYTICS_DATABASE_URL (a modelarts_transformer login), else
    DATABASE_URL."""
    role = "modelarts_transformer"
    if analytics_url:
        return Connection.of(analytics_url, settings.ANALYTICS_DATABASE_URL, role)
    return Connection.of(database_url, settings.DATABASE_URL, role)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it wraps (SQLAlchemy's `.orig`, causes, contexts), each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def is_transient(exc: BaseException) -> bool:
    """Whether a retry of the step may succeed: judged by the innermost database or API error
    in the chain, else by the exception itself."""
    for error in _chain(exc):
        if _is_database_error(error):
            return _transient_database_error(error)
        if isinstance(error, source_errors.SourceError):
            return isinstance(error, _TRANSIENT_SOURCE)
        if isinstance(error, _TRANSIENT_HTTP):
            return True
        if type(error).__name__ in _TRANSIENT_BY_NAME:
            return True
    return False


def _is_database_error(error: BaseException) -> bool:
    """A Postgres driver's error: psycopg 3 (the warehouse), or psycopg2 (Dagster's storage,
    pipelines/dagster_storage.py)."""
    if isinstance(error, psycopg.Error):
        return True
    psycopg2 = sys.modules.get("psycopg2")
    return psycopg2 is not None and isinstance(error, psycopg2.Error)


def _sqlstate(error: BaseException) -> str:
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None) or ""


def _transient_database_error(error: BaseException) -> bool:
    state = _sqlstate(error)
    if state:
        return state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES
    # No SQLSTATE: the connection failed or broke. A refused or lost connection is transient;
    # a server's FATAL answer (no such role or database, bad password, no pg_hba entry) is not.
    text = str(error)
    return "FATAL:" not in text or bool(_TRANSIENT_FATAL.search(text))


def database_error(exc: BaseException) -> BaseException | None:
    """The database's error behind `exc`, if one is (the warehouse's or Dagster's storage's)."""
    return next((e for e in _chain(exc) if _is_database_error(e)), None)


# Modules between a caller and the server: the caller is the first frame above them.
_DRIVER_MODULES = ("sqlalchemy", "psycopg", "contextlib")
_STORAGE_MODULES = ("dagster_postgres", "dagster._core.storage", "dagster._core.instance")


def met_by_dagster_storage(exc: BaseException) -> bool:
    """Whether the database error behind `exc` was met by Dagster's own storage (runs, event
    logs, schedules: DAGSTER_PG_URL) rather than by the pipeline's warehouse code: the code
    that called into the driver tells (the deepest frame above SQLAlchemy/psycopg in the
    traceback of the exception that carries the driver's error)."""
    database = database_error(exc)
    if database is None:
        return False
    for error in _chain(exc):
        carried = (getattr(error, "orig", None), error.__cause__, error.__context__)
        if error is database or any(c is database for c in carried):
            caller = _caller(error)
            if caller is not None:
                return caller.startswith(_STORAGE_MODULES)
    return False


def _caller(error: BaseException) -> str | None:
    """The module of the deepest frame of `error`'s traceback outside the driver."""
    caller, traceback = None, error.__traceback__
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if not module.startswith(_DRIVER_MODULES):
            caller = module
        traceback = traceback.tb_next
    return caller


def permanent_failure_message(exc: BaseException, connection: Connection | None) -> str:
    """One line: what failed and what the operator can do about it."""
    chain = list(_chain(exc))
    database = database_error(exc)
    if database is not None:
        if met_by_dagster_storage(exc):
            return _storage_message(database, dagster_storage_connection())
        return _database_message(database, connection)
    source = next((e for e in chain if isinstance(e, source_errors.SourceError)), None)
    if source is not None:
        text = " ".join(str(source).split())
        if isinstance(source, source_errors.AuthenticationError):
            return f"{text}: check the API credentials in the environment (README.md)"
        return text
    inner = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner) or type(inner).__name__
    if not isinstance(inner, settings.ConfigError):
        text = f"{type(inner).__name__}: {text}"
    return " ".join(text.split())


def _error_text(error: BaseException) -> tuple[str, str]:
    """The error's SQLSTATE and its primary message on one line (libpq's text of a failed
    connection, 'connection failed: ... failed: FATAL:  reason', when it has no SQLSTATE)."""
    state = _sqlstate(error)
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if state else None
    return state, " ".join((primary or str(error).split("FATAL:")[-1]).split())


def _storage_message(error: BaseException, connection: Connection) -> str:
    """Dagster's storage failed: named as such (never blamed on the warehouse), with its fix."""
    state, text = _error_text(error)
    who = f"in Dagster's storage as role {connection.login or '(default)'} ({DAGSTER_PG_URL})"
    if state == "42601" and "$1" in text:
        # the driver, not the schema: dagster-postgres binds NOTIFY's payload (see
        # pipelines/dagster_storage.py)
        fix = (
            "Dagster's storage runs on psycopg2: use deploy/dagster.yaml's storage "
            "(pipelines.dagster_storage) with a plain postgresql:// URL, or write "
            "postgresql+psycopg2:// in DAGSTER_PG_URL"
        )
    elif state == "42501" or "permission denied" in text:
        fix = (
            f"the login must own Dagster's database (`create database dagster owner "
            f"{connection.login or '<login>'}`, deploy/README.md)"
        )
    elif state in ("42P01", "42703"):
        fix = "its schema is behind this Dagster version: run `dagster instance migrate`"
    elif state[:2] == "28" or (not state and ("authentication" in text or "role" in text)):
        fix = f"check the user and password in {DAGSTER_PG_URL}"
    elif state == "3D000" or (not state and "database" in text):
        fix = f"check the database name in {DAGSTER_PG_URL}"
    elif not state:  # refused or lost: libpq's text says which server
        fix = f"check that the server of {DAGSTER_PG_URL} answers"
    else:
        fix = f"SQLSTATE {state}; the warehouse ({settings.DATABASE_URL}) is not involved"
    return f"{text} {who}: {fix}"


def _database_message(error: BaseException, connection: Connection | None) -> str:
    state, text = _error_text(error)
    if connection is None:
        return f"{text} (SQLSTATE {state})" if state else text
    who = f"as role {connection.login or '(default)'} ({connection.variable})"
    if state == "42501" or (not state and "permission denied" in text):
        return f"{text} {who}: {_permission_fix(connection, text)}"
    if state[:2] == "42":  # undefined table/column/function: the schema is behind the code
        return (
            f"{text} {who} (SQLSTATE {state}): the warehouse schema does not match this "
            "version; run `modelarts-etl migrate` as the schema owner"
        )
    if state[:2] == "28" or (not state and ("authentication" in text or "role" in text)):
        return f"{text} ({connection.variable}): check the user and password in it"
    if state == "3D000" or (not state and "database" in text):
        return f"{text} ({connection.variable}): check the database name in it"
    return f"{text} {who} (SQLSTATE {state or 'none'})"


def _permission_fix(connection: Connection, text: str) -> str:
    """What to do about a refused privilege, for the role the login is and the one it needs:
    least privilege first (the right login for the variable), grants only for a login that
    already is in the role it needs."""
    login = login_privileges(connection.url)
    name = connection.login or "<login>"
    grants = "run `modelarts-etl migrate --grants` as the schema owner"
    if connection.needs_role == OWNER:
        if login is not None and login.owns_schema:
            if "create role" in text:
                return (
                    f"the grant scripts create the project's roles: give {name} CREATEROLE "
                    f"(`alter role {name} createrole`, as a superuser), or run `modelarts-etl "
                    "migrate --grants` as a superuser"
                )
            return "the schema owner lacks this privilege: run it as a superuser"
        return f"run `modelarts-etl migrate` with {settings.DATABASE_URL} of the warehouse's owner"
    needed = connection.needs_role
    if login is not None and needed in login.member_of:
        # the right role, whose grants are behind the schema (a new table)
        return f"role {needed} lacks this grant: {grants}"
    # least privilege: the login of another role is the wrong login here; granting it the
    # role it lacks would give it both
    other = sorted(login.member_of) if login is not None else []
    reader_only = " (a login in analytics_reader reads the analytics marts only: BI tools)"
    analytics = settings.ANALYTICS_DATABASE_URL
    if needed == TRANSFORMER and connection.variable == settings.DATABASE_URL:
        fix = f"set {analytics} to a login in role {TRANSFORMER} (deploy/README.md)"
        if not other:  # a login of no project role: it may be meant to be the transformer
            return f"{fix}, or {grants}"
        return fix + (reader_only if other == [READER] else "")
    if other:
        use = {LOADER: settings.DATABASE_URL, TRANSFORMER: analytics}
        belongs = [use[r] for r in other if r in use and use[r] != connection.variable]
        return (
            f"{name} is a login in {', '.join(other)}"
            + (reader_only if other == [READER] else "")
            + f", not {needed}: set {connection.variable} to a login in role {needed} "
            "(deploy/README.md)"
            + (f"; {name} belongs in {' or '.join(belongs)}" if belongs else "")
        )
    return f"the login needs role {needed} (grant {needed} to {name}), and {grants}"


@contextmanager
def failing_fast(connection: Connection | None = None) -> Iterator[None]:
    """Let transient failures through to the step's RetryPolicy; raise a permanent one as a
    `Failure` that Dagster does not retry, described in one line."""
    from dagster import Failure

    try:
        yield
    except Failure:
        raise
    except Exception as exc:
        if is_transient(exc):
            # not silent: the retry waits (RetryPolicy backoff) would otherwise say nothing
            log.warning(
                "transient failure, the step's RetryPolicy runs it again: %s",
                permanent_failure_message(exc, connection),
            )
            raise
        raise Failure(
            description=permanent_failure_message(exc, connection), allow_retries=False
        ) from exc
