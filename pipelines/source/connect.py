"""Which endpoint, project and credentials a run uses, chosen from the settings in one place.

Credential sources, first found wins (the Huawei Cloud SDK's order and names, then ours):
1. `HUAWEICLOUD_SDK_AK` + `HUAWEICLOUD_SDK_SK` (+ `HUAWEICLOUD_SDK_SECURITY_TOKEN`);
2. the credentials file (`HUAWEICLOUD_SDK_CREDENTIALS_FILE`, default ~/.huaweicloud/credentials,
   section [basic]: ak, sk, security_token, project_id);
3. the ECS metadata service (temporary keys of the machine's IAM agency) when
   `HUAWEICLOUD_METADATA_ENDPOINT` names it;
4. IAM password auth (`HUAWEICLOUD_USERNAME`, `HUAWEICLOUD_PASSWORD`, `HUAWEICLOUD_DOMAIN`);
5. a static token (`MODELARTS_TOKEN`);
6. with none of these, the metadata service at its default address, as the SDK does on ECS.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import requests

from pipelines import settings
from pipelines.settings import ConfigError
from pipelines.source.auth import (
    AccessKeyAuth,
    IAMCredentials,
    IAMPasswordAuth,
    RequestAuth,
    StaticKeys,
    StaticToken,
)
from pipelines.source.client import HttpSettings, ModelArtsClient, build_session
from pipelines.source.credentials import (
    DEFAULT_METADATA_ENDPOINT,
    AccessKey,
    MetadataKeys,
    Secret,
    credentials_file_path,
    mask,
    read_credentials_file,
)
from pipelines.source.errors import (
    AuthenticationError,
    ModelArtsAPIError,
    SourceError,
    is_unpublished_api,
)
from pipelines.source.records import list_v2_services
from pipelines.source.retrying import RetryBudget, RetryPolicy

log = logging.getLogger(__name__)

ENV_KEYS = "environment"
FILE_KEYS = "credentials file"
METADATA = "metadata service"
PASSWORD = "IAM password"
TOKEN = "static token"


@dataclass(frozen=True)
class ConnectionSettings:
    """The ModelArts resource's fields that say where and as whom to connect."""

    endpoint: str | None = None
    project_id: str | None = None
    token: str | None = None
    iam_endpoint: str | None = None
    username: str | None = None
    password: str | None = None
    domain: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    security_token: str | None = None
    sdk_project_id: str | None = None
    credentials_file: str | None = None
    metadata_endpoint: str | None = None

    def __repr__(self) -> str:
        shown = ("endpoint", "project_id", "region", "access_key", "credentials_file")
        return "ConnectionSettings(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in shown) + ")"

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ConnectionSettings:
        env = os.environ if env is None else env
        names = {f.name for f in fields(cls)}
        return cls(
            **{
                field: env.get(var) or None
                for field, var in settings.MODELARTS_FIELDS.items()
                if field in names
            }
        )


@dataclass(frozen=True, repr=False)
class CredentialSource:
    """Where the credentials come from, and what was read there."""

    kind: str
    source: str  # shown in logs and `status`; never a secret
    key: AccessKey | None = None
    iam: IAMCredentials | None = None
    token: Secret | None = None
    metadata_endpoint: str | None = None
    metadata_explicit: bool = False
    project_id: str | None = None  # from the credentials file

    def __repr__(self) -> str:
        return f"CredentialSource({self.source!r})"


@dataclass(frozen=True, repr=False)
class Connection:
    """Where a run's requests go and how they are authorized."""

    endpoint: str
    project_id: str
    credentials: CredentialSource

    @property
    def source(self) -> str:
        return self.credentials.source

    def __repr__(self) -> str:
        return f"Connection({self.endpoint!r}, project {self.project_id!r}, {self.source})"

    def build_auth(
        self,
        session: requests.Session,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        budget: RetryBudget,
    ) -> RequestAuth:
        """The authorizer of this connection (one per run: its tokens or keys are shared)."""
        c = self.credentials
        if c.key is not None:
            return AccessKeyAuth(StaticKeys(c.key), self.project_id, c.source)
        if c.metadata_endpoint is not None:
            keys = MetadataKeys(
                c.metadata_endpoint, session, timeout=timeout, policy=policy, budget=budget
            )
            return AccessKeyAuth(keys, self.project_id, c.source)
        if c.iam is not None:
            return IAMPasswordAuth(c.iam, session, timeout, policy=policy, budget=budget)
        assert c.token is not None
        return StaticToken(c.token)


def resolve_connection(s: ConnectionSettings) -> Connection:
    """The connection the settings describe, without a request; ConfigError (one line naming the
    variables, never a value of a secret) when they describe none."""
    endpoint = s.endpoint or (s.region and settings.region_endpoint("modelarts", s.region))
    if not endpoint:
        raise ConfigError(
            f"{settings.MODELARTS_ENDPOINT} or {settings.IAM_REGION} must be set "
            "(e.g. HUAWEICLOUD_REGION=cn-north-4)"
        )
    credentials = choose_credentials(s)
    project_id = s.project_id or s.sdk_project_id or credentials.project_id
    if not project_id:
        region = f" of region {s.region}" if s.region else ""
        raise ConfigError(
            f"no project id for {endpoint}: set {settings.MODELARTS_PROJECT_ID} (or "
            f"{settings.SDK_PROJECT_ID}, or project_id in the credentials file) to the id of the "
            f"project{region} (console: My Credentials > API Credentials)"
        )
    return Connection(endpoint, project_id, credentials)


def choose_credentials(s: ConnectionSettings) -> CredentialSource:
    """The first credential source the settings give, in the order of this module's doc."""
    if s.access_key or s.secret_key or s.security_token:
        if not s.access_key or not s.secret_key:
            if s.access_key:
                have, lack = settings.SDK_AK, settings.SDK_SK
            else:
                have = settings.SDK_SK if s.secret_key else settings.SDK_SECURITY_TOKEN
                lack = settings.SDK_AK
            raise ConfigError(f"{have} is set but {lack} is not: set both or neither")
        token = Secret(s.security_token) if s.security_token else None
        key = AccessKey(s.access_key, Secret(s.secret_key), token)
        origin = f"{settings.SDK_AK}/{settings.SDK_SK}"
        return CredentialSource(ENV_KEYS, _describe(key, origin), key=key)
    path, explicit = credentials_file_path(s.credentials_file)
    found = read_credentials_file(path, explicit)
    if found is not None:
        assert found.access_key and found.secret_key
        token = Secret(found.security_token) if found.security_token else None
        key = AccessKey(found.access_key, Secret(found.secret_key), token)
        source = _describe(key, f"the credentials file {path}")
        return CredentialSource(FILE_KEYS, source, key=key, project_id=found.project_id)
    if s.metadata_endpoint:
        return _metadata(s.metadata_endpoint, explicit=True)
    if s.username or s.password:
        return _password(s)
    if s.token:
        return CredentialSource(TOKEN, StaticToken.source, token=Secret(s.token))
    return _metadata(DEFAULT_METADATA_ENDPOINT, explicit=False)


def _describe(key: AccessKey, origin: str) -> str:
    kind = "temporary AK/SK" if key.security_token is not None else "AK/SK"
    return f"{kind} {mask(key.ak)} from {origin}"


def _metadata(endpoint: str, explicit: bool) -> CredentialSource:
    endpoint = endpoint.rstrip("/")
    source = f"temporary AK/SK of the ECS metadata service at {endpoint} (IAM agency)"
    return CredentialSource(
        METADATA, source, metadata_endpoint=endpoint, metadata_explicit=explicit
    )


def _password(s: ConnectionSettings) -> CredentialSource:
    iam_endpoint = s.iam_endpoint or (s.region and settings.region_endpoint("iam", s.region))
    required = {
        f"{settings.IAM_ENDPOINT} or {settings.IAM_REGION}": iam_endpoint,
        settings.IAM_USERNAME: s.username,
        settings.IAM_PASSWORD: s.password,
        settings.IAM_DOMAIN: s.domain,
        settings.IAM_REGION: s.region,
    }
    missing = [var for var, value in required.items() if not value]
    if missing:
        raise ConfigError("IAM password auth is incomplete: set " + ", ".join(missing))
    assert iam_endpoint and s.username and s.password and s.domain and s.region
    iam = IAMCredentials(iam_endpoint, s.username, Secret(s.password), s.domain, s.region)
    source = f"IAM password of user {s.username} ({settings.IAM_USERNAME}) at {iam_endpoint}"
    return CredentialSource(PASSWORD, source, iam=iam)


def check_credentials(source: CredentialSource) -> None:
    """What can be checked before a run starts without loading anything: that the metadata
    service answers with keys, when it is the source. ConfigError naming its URL if not."""
    if source.metadata_endpoint is None:
        return
    url = source.metadata_endpoint
    try:
        with requests.Session() as session:
            MetadataKeys(url, session, timeout=(2.0, 5.0)).fetch_once()
    except (requests.RequestException, SourceError) as exc:
        reason = str(exc) if isinstance(exc, SourceError) else _reason(exc)
        if source.metadata_explicit:
            raise ConfigError(
                f"the ECS metadata service at {url} ({settings.METADATA_ENDPOINT}) did not "
                f"answer with credentials: {reason}"
            ) from None
        raise ConfigError(
            f"no usable credentials: none of {settings.SDK_AK}/{settings.SDK_SK}, a credentials "
            f"file ({settings.SDK_CREDENTIALS_FILE}, default ~/.huaweicloud/credentials), "
            f"{settings.IAM_USERNAME}/{settings.IAM_PASSWORD} or {settings.MODELARTS_TOKEN} is "
            f"set, and the ECS metadata service at {url} did not answer: {reason}"
        ) from None


def _reason(exc: requests.RequestException) -> str:
    """A short transport failure: 'Connection refused', 'timed out', never a URL's secrets."""
    text = str(exc)
    for known in ("Connection refused", "timed out", "Name or service not known", "No route"):
        if known in text:
            return known
    return type(exc).__name__


def check_access(connection: Connection, http: HttpSettings) -> str | None:
    """One request as a run would make it (the first page of the service listing): credentials
    the API refuses, or that lack the permission, are a ConfigError naming their source. Other
    failures (the API down, throttling) are left to the run, which retries them: returns why
    the credentials could not be checked then, None when the API accepted them."""
    session = build_session(http)
    budget = RetryBudget(http.max_retries)
    auth = connection.build_auth(session, http.timeout, http.retry_policy, budget)
    client = ModelArtsClient(
        connection.endpoint, connection.project_id, auth, session, http, budget=budget
    )
    generations = settings.api_generations(os.environ.get(settings.MODELARTS_API) or "auto")
    try:
        if "v1" in generations:
            try:
                next(client.list_services(limit=1), None)
            except ModelArtsAPIError as exc:
                if not is_unpublished_api(exc):
                    raise
                if "v2" not in generations:
                    raise ConfigError(
                        f"this region does not publish the /v1 API ({exc.error_code}: old-version "
                        f"services are discontinued there): set {settings.MODELARTS_API}=auto "
                        "or v2"
                    ) from None
                # MODELARTS_API=auto in a region that no longer publishes /v1: ask /v2 instead
                next(list_v2_services(client), None)
        else:  # MODELARTS_API=v2: a project whose API may have no v1 calls any more
            next(list_v2_services(client), None)
    except (AuthenticationError, ModelArtsAPIError) as exc:
        if isinstance(exc, ModelArtsAPIError) and exc.status not in (401, 403):
            raise ConfigError(f"{exc} (project {connection.project_id})") from None
        raise ConfigError(str(exc)) from None
    except SourceError as exc:
        log.info("credentials not checked: %s", exc)
        return " ".join(str(exc).split())
    except requests.RequestException as exc:
        log.info("credentials not checked: %s", _reason(exc))
        return _reason(exc)
    finally:
        session.close()
    return None


def check_environment(check_reachable: Callable[[str], None]) -> Connection:
    """The CLI's check before anything starts, of the API the environment configures: its
    project and credentials resolve, the metadata service (if it is the source) answers, the
    endpoint is reachable (`check_reachable`), and the API accepts the credentials."""
    connection = resolve_connection(ConnectionSettings.from_environment())
    check_credentials(connection.credentials)
    check_reachable(connection.endpoint)
    ca_bundle = os.environ.get(settings.MODELARTS_CA_BUNDLE) or None
    check_access(connection, HttpSettings(max_retries=2, ca_bundle=ca_bundle))
    return connection


def describe_environment() -> tuple[str, bool]:
    """`status`: where runs go and with which credentials (never a secret), the credentials
    checked with one cheap call (the first page of the service listing, no retry), or said
    not to be: (the line, whether the API is usable as configured)."""
    if not settings.configured().api:
        return "api: the simulator, with its AK/SK (MODELARTS_ENDPOINT is unset)", True
    try:
        chosen = ConnectionSettings.from_environment()
        connection = resolve_connection(chosen)
    except ConfigError as exc:
        return f"api: not usable: {exc}", False
    region = f" (region {chosen.region})" if chosen.region else ""
    iam = connection.credentials.iam
    line = (
        f"api: ModelArts {connection.endpoint}{region}"
        + (f", IAM {iam.iam_endpoint}" if iam is not None else "")
        + f", project {connection.project_id}, credentials: {connection.source}"
    )
    ca_bundle = os.environ.get(settings.MODELARTS_CA_BUNDLE) or None
    http = HttpSettings(
        connect_timeout_s=5.0, read_timeout_s=15.0, max_retries=0, ca_bundle=ca_bundle
    )
    try:
        check_credentials(connection.credentials)
    except ConfigError as exc:  # the metadata service gave no keys
        return f"{line}: NOT USABLE: {exc}", False
    try:
        not_checked = check_access(connection, http)
    except ConfigError as exc:
        return f"{line}: REFUSED: {exc}", False
    if not_checked is not None:
        return f"{line}: not checked (the API did not answer: {not_checked})", True
    return f"{line}: accepted (one listing call)", True
