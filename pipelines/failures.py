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
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import requests
from sqlalchemy.engine import make_url

from pipelines import settings
from pipelines.source import errors as source_errors

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Connection:
    """The warehouse connection a step uses, to name it in messages: its variable, the role it
    logs in as, and the role of sql/grants/ that login needs."""

    variable: str
    login: str | None
    needs_role: str

    @classmethod
    def of(cls, database_url: str | None, variable: str, needs_role: str) -> Connection:
        login = make_url(database_url).username if database_url else None
        return cls(variable, login, needs_role)


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
        if isinstance(error, psycopg.Error):
            return _transient_database_error(error)
        if isinstance(error, source_errors.SourceError):
            return isinstance(error, _TRANSIENT_SOURCE)
        if isinstance(error, _TRANSIENT_HTTP):
            return True
        if type(error).__name__ in _TRANSIENT_BY_NAME:
            return True
    return False


def _transient_database_error(error: psycopg.Error) -> bool:
    state = error.sqlstate
    if state:
        return state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES
    # No SQLSTATE: the connection failed or broke. A refused or lost connection is transient;
    # a server's FATAL answer (no such role or database, bad password, no pg_hba entry) is not.
    text = str(error)
    return "FATAL:" not in text or bool(_TRANSIENT_FATAL.search(text))


def database_error(exc: BaseException) -> psycopg.Error | None:
    """The warehouse's error behind `exc`, if one is."""
    return next((e for e in _chain(exc) if isinstance(e, psycopg.Error)), None)


def permanent_failure_message(exc: BaseException, connection: Connection | None) -> str:
    """One line: what failed and what the operator can do about it."""
    chain = list(_chain(exc))
    database = database_error(exc)
    if database is not None:
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


def _database_message(error: psycopg.Error, connection: Connection | None) -> str:
    state = error.sqlstate or ""
    primary = error.diag.message_primary if state else None
    # libpq's text of a failed connection: 'connection failed: ... failed: FATAL:  reason'
    text = " ".join((primary or str(error).split("FATAL:")[-1]).split())
    if connection is None:
        return f"{text} (SQLSTATE {state})" if state else text
    who = f"as role {connection.login or '(default)'} ({connection.variable})"
    migrate = "run `modelarts-etl migrate --grants` as the schema owner"
    if state == "42501" or (not state and "permission denied" in text):
        if connection.needs_role == "modelarts_transformer" and (
            connection.variable == settings.DATABASE_URL
        ):
            return (
                f"{text} {who}: set {settings.ANALYTICS_DATABASE_URL} to a login in role "
                f"modelarts_transformer (deploy/README.md), or {migrate}"
            )
        return (
            f"{text} {who}: the login needs role {connection.needs_role} "
            f"(grant {connection.needs_role} to {connection.login}), and {migrate}"
        )
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
