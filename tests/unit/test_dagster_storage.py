"""Dagster's storage URL: the guide's plain `postgresql://` runs on psycopg2 (the driver
dagster-postgres is written for); a URL that names its driver is kept."""

from __future__ import annotations

import pytest

from pipelines.dagster_storage import storage_url


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgresql://dagster:p%40ss@db.internal:5432/dagster",
            "postgresql+psycopg2://dagster:p%40ss@db.internal:5432/dagster",
        ),
        ("postgres://dagster@db/dagster", "postgresql+psycopg2://dagster@db/dagster"),
        (
            "postgresql://dagster@/dagster?host=/run/postgresql",
            "postgresql+psycopg2://dagster@/dagster?host=%2Frun%2Fpostgresql",
        ),
        ("postgresql+psycopg2://dagster@db/dagster", "postgresql+psycopg2://dagster@db/dagster"),
        ("postgresql+pg8000://dagster@db/dagster", "postgresql+pg8000://dagster@db/dagster"),
    ],
)
def test_a_url_without_a_driver_gets_psycopg2(given: str, used: str) -> None:
    assert storage_url(given) == used
