"""Retries of API calls, in one place: which failures are transient, how long to wait, and a
retry budget (retries and time) shared by every worker of a run. Throttling answers are not
retries: they go to the process's shared limiter (limiter.py) and are sent again while the
run's time budget lasts."""

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
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from pipelines.source.errors import (
    NotJSONBodyError,
    RetriesExhaustedError,
    RetryBudgetExhaustedError,
    RunTimeBudgetExhaustedError,
    SourceError,
    ThrottledError,
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


# How long a run may go on being throttled (MODELARTS_RUN_TIME_BUDGET_S): a night's window.
DEFAULT_RUN_TIME_BUDGET_S = 6 * 3600


class RetryBudget:
    """Retries a whole run may spend, shared by all workers; `None` total means unlimited.

    It also holds the run's time budget: throttling is waited out (never a failure) until
    `time_budget_s` after the budget was made, the run's start.
    """

    def __init__(
        self,
        total: int | None,
        time_budget_s: float = DEFAULT_RUN_TIME_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if total is not None and total < 0:
            raise ValueError("a retry budget cannot be negative")
        self.total = total
        self.time_budget_s = time_budget_s
        self._clock = clock
        self._deadline = clock() + time_budget_s
        self._spent = 0
        self._lock = threading.Lock()

    def check_time(self, what: str, reason: str) -> None:
        """Raise RunTimeBudgetExhaustedError when the run's time budget is over."""
        if self._clock() >= self._deadline:
            raise RunTimeBudgetExhaustedError(
                f"{what}: still throttled ({reason}) when the run's time budget of "
                f"{self.time_budget_s:.0f} s ended; raise MODELARTS_RUN_TIME_BUDGET_S, or run "
                "when the user's quota is less used"
            )

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
    on_throttled: Callable[[ThrottledError], None] | None = None,
) -> T:
    """`call()`, retried on transient failures with backoff (honouring Retry-After).

    Each retry is taken from `budget`; when the attempts or the budget run out the call fails
    with a SourceError that says what failed and why. Other errors propagate at once.
    A ThrottledError is handed to `on_throttled` (the shared limiter slows down there) and the
    call is made again, without limit until the run's time budget ends; with no
    `on_throttled` it is an ordinary transient failure.
    """
    if on_throttled is None:
        return _call_with_retries(call, what, policy, budget, on_retry, throttling=False)
    while True:
        try:
            return _call_with_retries(call, what, policy, budget, on_retry, throttling=True)
        except ThrottledError as exc:
            budget.check_time(what, describe_failure(exc))
            on_throttled(exc)


def _call_with_retries(
    call: Callable[[], T],
    what: str,
    policy: RetryPolicy,
    budget: RetryBudget,
    on_retry: Callable[[], None] | None,
    throttling: bool,
) -> T:
    def transient(exc: BaseException) -> bool:
        if throttling and isinstance(exc, ThrottledError):
            return False  # the caller's to wait out
        return isinstance(exc, TRANSIENT_ERRORS)

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
        retry=retry_if_exception(transient),
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=_wait(policy),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(call)
    except TRANSIENT_ERRORS as exc:
        if throttling and isinstance(exc, ThrottledError):
            raise
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
