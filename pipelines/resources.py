"""Dagster resources: the ModelArts API client and the Postgres warehouse."""

import threading
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine

from pipelines.source.auth import (
    IAMCredentials,
    IAMPasswordAuth,
    Secret,
    StaticToken,
    TokenProvider,
)
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.errors import AuthenticationError
from pipelines.source.extract import ExtractSettings
from pipelines.source.paging import OffsetMode
from pipelines.source.stats import ExtractionStats
from pipelines.warehouse.database import create_warehouse_engine, resolve_database_url
from pipelines.warehouse.migrations import apply_migrations


class ModelArtsResource(ConfigurableResource):
    """The ModelArts inference-service API of one project.

    Auth is a static `token` (MODELARTS_TOKEN) or IAM password auth (HUAWEICLOUD_*).
    """

    endpoint: str = Field(
        description="ModelArts endpoint, e.g. https://modelarts.REGION.myhuaweicloud.com"
    )
    project_id: str = Field(description="Project ID in the URL path")
    token: str | None = Field(default=None, repr=False, description="A static X-Auth-Token")
    iam_endpoint: str | None = Field(default=None, description="IAM endpoint for password auth")
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    domain: str | None = None
    region: str | None = Field(default=None, description="Project (scope) name, e.g. cn-north-4")
    offset_mode: str = Field(default="page", description="'page' (documented) or 'record'")
    workers: int = Field(default=4, description="Services fetched at once")
    page_limit: int = 1000
    max_pages_per_window: int = 10_000
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_retries: int = 6

    def http_settings(self) -> HttpSettings:
        return HttpSettings(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            max_retries=self.max_retries,
            pool_size=max(1, int(self.workers)) + 1,
        )

    def extract_settings(self) -> ExtractSettings:
        return ExtractSettings(
            page_limit=self.page_limit,
            offset_mode=OffsetMode(self.offset_mode),
            max_pages_per_window=self.max_pages_per_window,
            workers=int(self.workers),
        )

    def build_client(self, stats: ExtractionStats | None = None) -> ModelArtsClient:
        """A client with its own session and counters (one per window load)."""
        settings = self.http_settings()
        session = build_session(settings)
        return ModelArtsClient(
            self.endpoint,
            self.project_id,
            self._token_provider(session, settings),
            session,
            settings,
            stats,
        )

    def _token_provider(self, session: object, settings: HttpSettings) -> TokenProvider:
        if self.token:
            return StaticToken(Secret(self.token))
        missing = [
            name
            for name in ("iam_endpoint", "username", "password", "domain", "region")
            if not getattr(self, name)
        ]
        if missing:
            raise AuthenticationError(
                "no MODELARTS_TOKEN and IAM password auth incomplete: missing " + ", ".join(missing)
            )
        assert self.iam_endpoint and self.username and self.password
        assert self.domain and self.region
        credentials = IAMCredentials(
            self.iam_endpoint, self.username, Secret(self.password), self.domain, self.region
        )
        import requests

        assert isinstance(session, requests.Session)
        return IAMPasswordAuth(credentials, session, timeout=settings.timeout)


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


class WarehouseResource(ConfigurableResource):
    """The Postgres warehouse: DATABASE_URL, or an embedded server in `data_dir` when unset."""

    database_url: str | None = Field(default=None, repr=False)
    data_dir: str = ".data"

    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._engine = warehouse_engine(self.database_url, Path(self.data_dir))

    def get_engine(self) -> Engine:
        if self._engine is None:
            self._engine = warehouse_engine(self.database_url, Path(self.data_dir))
        return self._engine


def warehouse_engine(database_url: str | None, data_dir: Path) -> Engine:
    """One migrated engine per database per process."""
    url = resolve_database_url(database_url, data_dir)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_warehouse_engine(url)
            apply_migrations(engine)
            _engines[url] = engine
        return engine
