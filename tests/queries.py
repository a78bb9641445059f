"""What the tests read back from the warehouse: one read statement on its own connection, with
bound parameters. Rows compare and hash as tuples and name their columns (`row.events`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text


def rows(engine: Engine, statement: str, **params: Any) -> list[Any]:
    """Every row of `statement` (a SQLAlchemy Row each)."""
    with engine.connect() as conn:
        return list(conn.execute(text(statement), params))


def one(engine: Engine, statement: str, **params: Any) -> Any:
    """The one row of `statement` (an error if it returns none or several)."""
    with engine.connect() as conn:
        return conn.execute(text(statement), params).one()


def scalar(engine: Engine, statement: str, **params: Any) -> Any:
    """The one value of `statement`: one row of one column."""
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def event_rows(engine: Engine) -> list[tuple[str, int, str, str]]:
    """Every row of service_events as (service_id, occur_time, event_type, event_info), a doubled
    key twice."""
    stored = rows(
        engine, "select service_id, occur_time, event_type, event_info from service_events"
    )
    return [(r[0], r[1], r[2], r[3]) for r in stored]
