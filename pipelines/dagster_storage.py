"""Dagster's own storage on Postgres (deploy/dagster.yaml), on the driver dagster-postgres needs.

dagster-postgres 0.29 is written for psycopg2 (its declared dependency): it sends
`NOTIFY run_events, %(notify_id)s` with the run's id as a bound parameter, which psycopg2
interpolates on the client. SQLAlchemy 2.1 maps a plain `postgresql://` URL to psycopg 3, which
binds parameters on the server, and Postgres takes no parameter in NOTIFY: every stored event
fails with `syntax error at or near "$1"` (runs fail, the webserver answers 500, the daemon
logs the error). The deploy guide's DAGSTER_PG_URL is a plain `postgresql://` URL, so this
storage names the driver itself: a URL without one gets `+psycopg2`; a URL that names a
driver is the operator's choice and is kept. The warehouse stays on psycopg 3
(pipelines/warehouse/database.py); only Dagster's storage uses psycopg2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._core.storage.config import pg_config
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy.engine import make_url

# The driver dagster-postgres is built and tested with (it depends on psycopg2-binary).
STORAGE_DRIVER = "postgresql+psycopg2"


def storage_url(url: str) -> str:
    """`postgresql://` or `postgres://` (no driver) -> `postgresql+psycopg2://`; any other URL as
    it is."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername != "postgresql":
        return url
    return parsed.set(drivername=STORAGE_DRIVER).render_as_string(hide_password=False)


class PostgresStorage(DagsterPostgresStorage):
    """dagster-postgres's storage with DAGSTER_PG_URL on psycopg2 (see the module's docstring).

    Configured in dagster.yaml as `storage: custom:` with this module and class, and the
    same config as `storage: postgres:` (postgres_url, or postgres_db)."""

    @classmethod
    def config_type(cls) -> Any:
        return pg_config()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=storage_url(pg_url_from_config(config_value)),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
