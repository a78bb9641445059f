"""Retries of API calls, in one place: which failures are transient, how long to wait, and a
retry budget and request rate shared by every worker of a run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson
import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from pipelines.source.errors import (
    NotJSONBodyError,
    RetriesExhaustedError,
    RetryBudgetExhaustedError,
    SourceError,
    TransientHTTPError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Dropped connections, timeouts, truncated or undecodable bodies, 429 and 5xx answers.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    orjson.JSONDecodeError,
    NotJSONBodyError,
    TransientHTTPError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per call and the jittered exponential backoff between them."""

    max_retries: int = 6
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 30.0


class RetryBudget:
    """Retries a whole run may spend, shared by all workers; `None` total means unlimited."""

    def __init__(self, total: int | None):
        if total is not None and total < 0:
            raise ValueError("a retry budget cannot be negative")
        self.total = total
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> int:
        with self._lock:
            return self._spent

    def spend(self, what: str, reason: str) -> None:
        """Take one retry, or raise RetryBudgetExhaustedError when none is left."""
        with self._lock:
            if self.total is not None and self._spent >= self.total:
                raise RetryBudgetExhaustedError(
                    f"the run's retry budget of {self.total} retries is spent; "
                    f"{what} failed again ({reason}). The API is failing more than it should: "
                    f"look at its health, or raise MODELARTS_RETRY_BUDGET"
                )
            self._spent += 1

    def __repr__(self) -> str:
        return f"RetryBudget(total={self.total}, spent={self.spent})"


class RateLimiter:
    """A token bucket: at most `rate` requests per second on average, bursts up to `burst`.

    Shared by all workers of a run; `rate` 0 means unlimited.
    """

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        if rate < 0:
            raise ValueError("a rate limit cannot be negative")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait for one token; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                delay = (1.0 - self._tokens) / self.rate
            sleep(delay)
            waited += delay

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}/s, burst={self.burst})"


def describe_failure(exc: BaseException) -> str:
    """A short reason for logs and errors: never a URL, header or body."""
    if isinstance(exc, SourceError):
        return str(exc)
    return type(exc).__name__


def call_with_retries(
    call: Callable[[], T],
    what: str,
    policy: RetryPolicy,
    budget: RetryBudget,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """`call()`, retried on transient failures with backoff (honouring Retry-After).

    Each retry is taken from `budget`; when the attempts or the budget run out the call fails
    with a SourceError that says what failed and why. Other errors propagate at once.
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = describe_failure(exc) if exc else "unknown"
        budget.spend(what, reason)
        if on_retry is not None:
            on_retry()
        log.warning(
            "%s: %s; retry %d in %.2f s",
            what,
            reason,
            state.attempt_number,
            state.upcoming_sleep,
        )

    retrying = Retrying(
        retry=retry_if_exception_type(TRANSIENT_ERRORS),
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=_wait(policy),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(call)
    except TRANSIENT_ERRORS as exc:
        raise RetriesExhaustedError(
            f"{what}: gave up after {policy.max_retries + 1} attempts: {describe_failure(exc)}"
        ) from None


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=policy.backoff_factor_s, max=policy.backoff_max_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        jittered = float(backoff(state))
        if isinstance(exc, TransientHTTPError) and exc.retry_after_s is not None:
            # The server said when to come back: not sooner, plus a little jitter so that
            # workers throttled together do not return together.
            return min(policy.backoff_max_s, exc.retry_after_s) + min(jittered, 1.0)
        return jittered

    return wait
