"""The run's retry budget and the shared rate limit, without the network."""

from __future__ import annotations

import pytest

from pipelines.source.errors import RetryBudgetExhaustedError, SourceError, TransientHTTPError
from pipelines.source.retrying import RateLimiter, RetryBudget, RetryPolicy, call_with_retries

FAST = RetryPolicy(max_retries=3, backoff_factor_s=0.0, backoff_max_s=0.0)


def _always_503() -> None:
    raise TransientHTTPError(503, "APIG.503", "Service Unavailable", "x", retry_after_s=0)


def test_an_exhausted_budget_is_a_clear_error_shared_across_calls() -> None:
    budget = RetryBudget(4)
    with pytest.raises(SourceError, match="gave up after 4 attempts"):
        call_with_retries(_always_503, "call one", FAST, budget)
    assert budget.spent == 3
    with pytest.raises(RetryBudgetExhaustedError, match="retry budget of 4") as caught:
        call_with_retries(_always_503, "call two", FAST, budget)
    assert "call two" in str(caught.value) and "MODELARTS_RETRY_BUDGET" in str(caught.value)


def test_a_non_transient_error_is_not_retried() -> None:
    calls = []

    def bad_request() -> None:
        calls.append(1)
        raise ValueError("400")

    with pytest.raises(ValueError):
        call_with_retries(bad_request, "x", FAST, RetryBudget(10))
    assert calls == [1]


def test_the_rate_limiter_spaces_requests_after_the_burst() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, burst=2, clock=lambda: now[0])
    waits = [limiter.acquire(sleep) for _ in range(5)]
    assert waits[:2] == [0.0, 0.0]
    assert all(w == pytest.approx(0.1) for w in waits[2:])
    assert now[0] == pytest.approx(0.3)  # 5 requests at 10/s with a burst of 2
    assert RateLimiter(0).acquire(sleep) == 0.0
