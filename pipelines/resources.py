"""Dagster resources: the ModelArts API client and the Postgres warehouse."""

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine

from pipelines import settings
from pipelines.source.auth import RequestAuth
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.connect import Connection, ConnectionSettings, resolve_connection
from pipelines.source.extract import ExtractSettings
from pipelines.source.limiter import RateLimiter, shared_limiter
from pipelines.source.paging import OffsetMode
from pipelines.source.retrying import DEFAULT_RUN_TIME_BUDGET_S, RetryBudget
from pipelines.source.stats import ExtractionStats
from pipelines.warehouse.database import warehouse_engine

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class ModelArtsResource(ConfigurableResource):
    """The ModelArts inference-service API of one project.

    Credentials (pipelines/source/connect.py): AK/SK from the environment or the SDK's
    credentials file, temporary AK/SK from the ECS metadata service, IAM password auth, or a
    static token. The credential (tokens, temporary keys), the retry budget and the request rate
    limit are shared by every worker and window of one run.
    """

    endpoint: str | None = Field(
        default=None,
        description="ModelArts endpoint, e.g. https://modelarts.REGION.myhuaweicloud.com; "
        "derived from `region` when unset",
    )
    project_id: str | None = Field(default=None, description="Project ID in the URL path")
    token: str | None = Field(default=None, repr=False, description="A static X-Auth-Token")
    access_key: str | None = Field(default=None, description="AK (HUAWEICLOUD_SDK_AK)")
    secret_key: str | None = Field(default=None, repr=False, description="SK (secret)")
    security_token: str | None = Field(
        default=None, repr=False, description="Security token of temporary AK/SK (secret)"
    )
    sdk_project_id: str | None = Field(
        default=None,
        description="HUAWEICLOUD_SDK_PROJECT_ID: the project id when project_id is unset",
    )
    credentials_file: str | None = Field(
        default=None, description="The SDK's credentials file; ~/.huaweicloud/credentials"
    )
    metadata_endpoint: str | None = Field(
        default=None, description="ECS metadata service for temporary AK/SK"
    )
    ca_bundle: str | None = Field(
        default=None, description="CA bundle (PEM) to verify the API's TLS certificates against"
    )
    iam_endpoint: str | None = Field(default=None, description="IAM endpoint for password auth")
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    domain: str | None = None
    region: str | None = Field(default=None, description="Project (scope) name, e.g. cn-north-4")
    offset_mode: str = Field(default="page", description="'page' (documented) or 'record'")
    api: str = Field(
        default="auto", description="API generations to load: auto (v1 and v2), v1 or v2"
    )
    workers: int = Field(default=4, description="Services fetched at once, at the start")
    max_workers: int = Field(
        default=16,
        description="The most services fetched at once: the workers grow up to it while "
        "answers are slow and the gateway does not throttle",
    )
    page_limit: int = Field(default=1000, description="Events per page, 10..1000")
    max_pages_per_window: int = 10_000
    split_threshold: int = Field(
        default=20_000,
        description="A service's window holding more events is split in halves; 0: never",
    )
    lookback_hours: int = Field(
        default=0, description="Hours before a run's first day fetched again for late events"
    )
    max_requests_per_s: int = Field(
        default=20,
        description="The most the process sends per second, all runs and workers together "
        "(the ceiling of the shared adaptive limiter); 0: none",
    )
    retry_budget: int = Field(default=1000, description="Retries one run may spend in all")
    run_time_budget_s: int = Field(
        default=DEFAULT_RUN_TIME_BUDGET_S,
        description="Seconds a run may go on being throttled (waiting under the user's quota) "
        "before it fails; throttling never fails a run sooner",
    )
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_retries: int = Field(default=6, description="Retries of one request")
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 30.0

    _budget: RetryBudget | None = PrivateAttr(default=None)
    _limiter: RateLimiter | None = PrivateAttr(default=None)
    _connection: Connection | None = PrivateAttr(default=None)
    _auth: RequestAuth | None = PrivateAttr(default=None)
    _auth_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._budget = self._new_budget()
        try:
            connection = self.connection()
        except settings.ConfigError:
            # Not raised here: Dagster's executors retry a step whose resource failed to start,
            # whatever the error (3 times, minutes apart, for a missing variable). The step's
            # first use of the connection raises it again, inside `failing_fast`: a Failure
            # that allows no retry, described in one line.
            return
        (context.log or log).info(
            "ModelArts %s, project %s, credentials: %s",
            connection.endpoint,
            connection.project_id,
            connection.source,
        )

    def connection(self) -> Connection:
        """Endpoint, project and credential source of this resource (ConfigError if none)."""
        if self._connection is None:
            names = ConnectionSettings.__dataclass_fields__
            self._connection = resolve_connection(
                ConnectionSettings(**{name: getattr(self, name) for name in names})
            )
        return self._connection

    def run_auth(self) -> RequestAuth:
        """The run's authorizer, shared by its windows and workers: one IAM token or one set of
        temporary keys at a time, renewed for all of them."""
        with self._auth_lock:
            if self._auth is None:
                settings = self.http_settings()
                session = build_session(replace(settings, pool_size=2))
                self._auth = self.connection().build_auth(
                    session, settings.timeout, settings.retry_policy, self.run_budget()
                )
            return self._auth

    def run_budget(self) -> RetryBudget:
        """The retry budget of this run (created on first use outside Dagster)."""
        if self._budget is None:
            self._budget = self._new_budget()
        return self._budget

    def _new_budget(self) -> RetryBudget:
        time_budget = settings.check_integer(
            settings.MODELARTS_RUN_TIME_BUDGET_S, self.run_time_budget_s
        )
        return RetryBudget(self.retry_budget, time_budget_s=float(time_budget))

    def run_limiter(self) -> RateLimiter:
        """The process's one limiter for this user at this endpoint (limiter.py): every run
        and worker of the process asks it, and throttling slows them all."""
        if self._limiter is None:
            connection = self.connection()
            key = f"{connection.endpoint} {connection.project_id} {connection.source}"
            self._limiter = shared_limiter(key, self.max_requests_per_s)
        return self._limiter

    def http_settings(self) -> HttpSettings:
        return HttpSettings(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            max_retries=self.max_retries,
            backoff_factor_s=self.backoff_factor_s,
            backoff_max_s=self.backoff_max_s,
            # every worker keeps its own keep-alive connection, plus one for token requests
            pool_size=max(1, int(self.workers), int(self.max_workers)) + 1,
            ca_bundle=self.ca_bundle,
        )

    def generations(self) -> tuple[str, ...]:
        """The API generations this run lists and loads (MODELARTS_API)."""
        return settings.api_generations(self.api)

    def extract_settings(self) -> ExtractSettings:
        """The extraction settings, checked against the ranges of their variables."""
        var = settings.MODELARTS_FIELDS
        return ExtractSettings(
            page_limit=settings.check_integer(var["page_limit"], self.page_limit),
            offset_mode=OffsetMode(settings.check_offset_mode(self.offset_mode)),
            max_pages_per_window=self.max_pages_per_window,
            split_threshold=settings.check_integer(var["split_threshold"], self.split_threshold)
            or None,
            workers=settings.check_integer(var["workers"], self.workers),
            max_workers=settings.check_integer(var["max_workers"], self.max_workers),
            stall_timeout_s=float(settings.wait_timeout_s()),
        )

    def build_client(self, stats: ExtractionStats | None = None) -> ModelArtsClient:
        """A client with its own session and counters (one per window load), sharing the run's
        credential, retry budget and rate limit."""
        settings = self.http_settings()
        connection = self.connection()
        return ModelArtsClient(
            connection.endpoint,
            connection.project_id,
            self.run_auth(),
            build_session(settings),
            settings,
            stats,
            budget=self.run_budget(),
            limiter=self.run_limiter(),
        )


class WarehouseResource(ConfigurableResource):
    """The Postgres warehouse: DATABASE_URL, or an embedded server in `data_dir` when unset."""

    database_url: str | None = Field(default=None, repr=False)
    analytics_database_url: str | None = Field(
        default=None,
        repr=False,
        description="The marts' connection (a transformer role); DATABASE_URL when unset",
    )
    data_dir: str = ".data"

    _engine: Engine | None = PrivateAttr(default=None)

    def get_engine(self) -> Engine:
        """The loader's engine. A warehouse with a migration pending fails here, naming
        `modelarts-etl migrate`: a run never changes the schema."""
        if self._engine is None:
            self._engine = warehouse_engine(self.database_url, Path(self.data_dir))
        return self._engine

    def get_analytics_engine(self) -> Engine:
        """The engine the marts are rebuilt with: a role that reads raw and writes analytics."""
        if self.analytics_database_url:
            return warehouse_engine(self.analytics_database_url, Path(self.data_dir))
        return self.get_engine()
