"""How a failed command is told: one line, the innermost meaningful message, no secret in it."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

from pipelines import settings


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
    line = warehouse_error_line(exc)
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


def warehouse_error_line(exc: BaseException) -> str | None:
    """A warehouse error (no privilege, schema behind, login refused) worded as a step's
    permanent failure is (pipelines/failures.py): the cause and what to do."""
    if "psycopg" not in sys.modules or isinstance(exc, CliError):
        return None
    from pipelines.failures import database_error, loader_connection, permanent_failure_message

    if database_error(exc) is None:
        return None
    return permanent_failure_message(exc, loader_connection(os.environ.get(settings.DATABASE_URL)))


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
