"""Errors of the ModelArts source; messages never carry credentials."""

from __future__ import annotations

from pipelines.source.limiter import Quota


class SourceError(Exception):
    """Base of every error the extractor raises on purpose."""


# The gateway's code for a route it does not publish: /v1 calls in a region that has
# discontinued old-version services answer 404 with it.
API_NOT_PUBLISHED = "APIG.0101"


class ModelArtsAPIError(SourceError):
    """A non-retryable answer from the API, with its error_code and error_msg."""

    def __init__(self, status: int, error_code: str | None, error_msg: str | None, what: str):
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        super().__init__(
            f"{what}: HTTP {status} {error_code or '-'}: {error_msg or '(no message)'}"
        )


def is_unpublished_api(exc: ModelArtsAPIError) -> bool:
    """The gateway does not publish the route called (404 APIG.0101)."""
    return exc.status == 404 and exc.error_code == API_NOT_PUBLISHED


class ServiceNotFoundError(ModelArtsAPIError):
    """404 ModelArts.3502: the service was deleted between listing and fetching."""


class AuthenticationError(SourceError):
    """The credentials were refused or no token could be obtained."""


class PagingError(SourceError):
    """Pages disagree with total_count: overlap, gap, or a loop past the page cap."""


class TransientHTTPError(SourceError):
    """A 429 or 5xx answer: worth retrying, after `retry_after_s` when the server said so."""

    def __init__(
        self,
        status: int,
        error_code: str | None,
        error_msg: str | None,
        what: str,
        retry_after_s: float | None = None,
    ):
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.retry_after_s = retry_after_s
        self.what = what
        super().__init__(f"HTTP {status} {error_code or '-'}: {error_msg or '(no message)'}")


class ThrottledError(TransientHTTPError):
    """429 (`APIG.0308`/`APIGW.0308`): over the user's quota. Never counted against the retry
    policy or budget: the shared limiter slows down and the send is tried again while the
    run's time budget lasts. `quota`: what the message states, if anything."""

    def __init__(
        self,
        error_code: str | None,
        error_msg: str | None,
        what: str,
        retry_after_s: float | None = None,
        quota: Quota | None = None,
    ):
        super().__init__(429, error_code, error_msg, what, retry_after_s)
        self.quota = quota


class CredentialRefusedError(TransientHTTPError):
    """401 twice in a row with renewable credentials (tokens, temporary keys): the credential
    died as it was renewed, so the request is retried with backoff from the run's budget."""


class RetriesExhaustedError(SourceError):
    """One request failed transiently on every attempt its retry policy allows."""


class RetryBudgetExhaustedError(SourceError):
    """The run spent every retry it was allowed: the API fails too often to go on."""


class RunTimeBudgetExhaustedError(SourceError):
    """The run is still throttled when its time budget (MODELARTS_RUN_TIME_BUDGET_S) ends."""


class NotJSONBodyError(SourceError):
    """A 200 whose body is not JSON (truncated, or a gateway's HTML page): retried."""


class ExtractionStalledError(SourceError):
    """No worker delivered a page for PIPELINES_WAIT_TIMEOUT_S."""
