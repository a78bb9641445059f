"""How a failed command is told: one line, the innermost meaningful message, no secret in it."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipelines import settings

if TYPE_CHECKING:
    from pipelines.failures import Connection


class CliError(Exception):
    """An operator mistake (exit 2) or an unreachable service (exit 1): one line on stderr."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def error_line(command: str, exc: Exception) -> tuple[str, int]:
    """The line on stderr for a command that failed with `exc`, and its exit code."""
    code = exc.code if isinstance(exc, CliError) else 2 if is_config(exc) else 1
    if type(exc).__name__ == "MigrationPendingError":  # its message says what to do
        exc = CliError(str(exc), code=1)
    hint = "" if isinstance(exc, CliError | settings.ConfigError) else " (--debug: traceback)"
    line = warehouse_error_line(exc, command)
    if line is not None:
        line, hint = one_line(CliError(line)), ""
    return f"modelarts-etl {command}: error: {line or one_line(exc)}{hint}", code


def is_config(exc: BaseException) -> bool:
    """A ConfigError, also when Dagster wrapped it (a resource failing to start)."""
    while exc is not None:
        if isinstance(exc, settings.ConfigError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def warehouse_error_line(exc: BaseException, command: str = "run") -> str | None:
    """A database error (no privilege, schema behind, login refused) worded as a step's
    permanent failure is (pipelines/failures.py): the database and login that failed (the
    warehouse's connection of `command`, or Dagster's storage), and what to do."""
    if "psycopg" not in sys.modules or isinstance(exc, CliError):
        return None
    from pipelines.failures import database_error, permanent_failure_message

    if database_error(exc) is None:
        return None
    return permanent_failure_message(exc, command_connection(command))


def command_connection(command: str) -> Connection:
    """The warehouse connection `command` uses, and the role it needs: `migrate` the owner's,
    `report` the marts' (ANALYTICS_DATABASE_URL, else DATABASE_URL), the others the loader's."""
    from pipelines.failures import loader_connection, owner_connection, transformer_connection

    database_url = os.environ.get(settings.DATABASE_URL)
    if command == "migrate":
        return owner_connection(database_url)
    if command == "report":
        return transformer_connection(database_url, os.environ.get(settings.ANALYTICS_DATABASE_URL))
    return loader_connection(database_url)


def one_line(exc: BaseException) -> str:
    """The innermost meaningful message of `exc` on one line, with no secret in it."""
    inner: BaseException = exc
    while isinstance(inner, settings.ConfigError) is False and inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner) or type(inner).__name__
    if not isinstance(inner, CliError | settings.ConfigError):
        text = f"{type(inner).__name__}: {text}"
    # Defence in depth (no message is built from a secret): secrets long enough to be real.
    secrets = [os.environ.get(var) for var in settings.SECRETS]
    for var in (settings.DATABASE_URL, settings.ANALYTICS_DATABASE_URL):
        secrets.append(urlsplit(os.environ.get(var, "")).password)
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    line = " ".join(text.split())
    # long enough for a list of the known region ids (source/regions.py)
    return line if len(line) <= 600 else line[:597] + "..."
