"""The run's retry budget and the shared rate limit, without the network."""

from __future__ import annotations

import pytest

from pipelines.source.errors import (
    RetryBudgetExhaustedError,
    RunTimeBudgetExhaustedError,
    SourceError,
    ThrottledError,
    TransientHTTPError,
)
from pipelines.source.limiter import Quota, RateLimiter, parse_quota, shared_limiter
from pipelines.source.retrying import RetryBudget, RetryPolicy, call_with_retries

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


# The adaptive limiter (limiter.py) on a fake clock: every sleep moves time forward.
class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("message", "quota"),
    [
        ("The throttling threshold has been reached: policy user over ratelimit,limit:60,"
         "time:1 minute", Quota(60, 60.0)),
        ("policy user over ratelimit,limit:100,time:1 minute", Quota(100, 60.0)),
        ("over ratelimit, limit: 5, time: 2 second", Quota(5, 2.0)),
        ("policy ip over ratelimit,limit:1000,time:1 hour", Quota(1000, 3600.0)),
        ("The request is throttled.", None),
        ("limit:0,time:1 minute", None),
        (None, None),
    ],
)  # fmt: skip
def test_a_stated_quota_is_read_from_the_message(message: str | None, quota: Quota | None) -> None:
    assert parse_quota(message) == quota


def test_a_stated_quota_is_honoured_exactly_by_every_worker() -> None:
    t = FakeTime()
    limiter = RateLimiter(0, clock=t.clock)
    sends = [t.now for _ in range(10) if limiter.acquire(t.sleep) >= 0]
    assert sends == [0.0] * 10  # no ceiling, nothing known: no wait
    pause = limiter.throttled(None, Quota(10, 60.0))
    assert pause == pytest.approx(61.0)  # until the oldest send leaves the window (+1 s margin)
    later = []
    for _ in range(25):
        limiter.acquire(t.sleep)
        later.append(t.now)
    every = sends + later
    # never more than 10 sends in any 60 s
    assert all(sum(1 for s in every if a <= s < a + 60.0) <= 10 for a in every)
    assert later[0] == pytest.approx(61.0) and later[-1] == pytest.approx(183.0)


def test_retry_after_pauses_every_worker_at_the_same_rate() -> None:
    t = FakeTime()
    limiter = RateLimiter(5, clock=t.clock)
    assert limiter.throttled(3.0) == pytest.approx(3.0)
    assert limiter.acquire(t.sleep) == pytest.approx(3.0)  # any worker waits it out
    assert limiter.state().rate_per_s == 5.0 and limiter.state().throttled == 1


def test_a_bare_throttle_guesses_a_minutes_quota_halves_the_rate_and_probes_back_up() -> None:
    t = FakeTime()
    limiter = RateLimiter(8, clock=t.clock, quiet_s=10.0)
    for _ in range(40):  # 40 sends in 4 s, then a 429 without Retry-After or a stated limit
        limiter.acquire(t.sleep)
    first_throttle = t.now
    # what the last minute admitted is the guess: every worker waits until the first of those
    # 40 leaves the window (+1 s margin); the rate is halved
    assert limiter.throttled() == pytest.approx(61.0 - first_throttle)
    state = limiter.state()
    assert state.quota == Quota(40, 60.0) and state.quota_share == 40
    assert state.rate_per_s == pytest.approx(4.0)
    t.now += 0.5
    limiter.throttled()  # the same congestion (another worker's 429): no second cut
    assert limiter.state().rate_per_s == pytest.approx(4.0)
    assert limiter.state().quota_share == 40
    sent = []
    for _ in range(300):
        limiter.acquire(t.sleep)
        sent.append(t.now)
    assert sent[0] == pytest.approx(61.0)  # nobody sent during the pause
    # without throttling, the guess grows where it binds and the rate goes back to the ceiling
    final = limiter.state()
    assert final.quota_share is not None and final.quota_share > 40
    assert final.rate_per_s == 8.0


def test_throttling_never_spends_the_retry_budget_but_ends_with_the_time_budget() -> None:
    t = FakeTime()
    budget = RetryBudget(0, time_budget_s=100.0, clock=t.clock)
    calls: list[float] = []

    def throttled_thrice() -> str:
        calls.append(t.now)
        if len(calls) <= 3:
            raise ThrottledError("APIG.0308", "over ratelimit", "x", retry_after_s=10.0)
        return "ok"

    def wait(exc: ThrottledError) -> None:
        t.sleep(exc.retry_after_s or 0.0)

    assert call_with_retries(throttled_thrice, "x", FAST, budget, on_throttled=wait) == "ok"
    assert budget.spent == 0 and calls == [0.0, 10.0, 20.0, 30.0]

    def always_throttled() -> str:
        raise ThrottledError("APIGW.0308", "over ratelimit", "x", retry_after_s=30.0)

    with pytest.raises(RunTimeBudgetExhaustedError, match="MODELARTS_RUN_TIME_BUDGET_S"):
        call_with_retries(always_throttled, "list", FAST, budget, on_throttled=wait)
    assert t.now >= 100.0


def test_one_limiter_per_quota_key_in_the_process() -> None:
    first = shared_limiter("https://a user-1", 20)
    assert shared_limiter("https://a user-1", 5) is first and first.rate == 5
    assert shared_limiter("https://a user-2", 20) is not first


def test_a_quota_found_shared_with_another_client_is_kept_to_our_part() -> None:
    t = FakeTime()
    limiter = RateLimiter(1, clock=t.clock)
    for _ in range(30):  # 30 sends over 30 s: the whole quota of 30 a minute is ours
        limiter.acquire(t.sleep)
    limiter.throttled(None, Quota(30, 60.0))
    assert limiter.state().quota_share == 30  # ours filled it: not shared
    other = RateLimiter(1, clock=t.clock, quiet_s=1000.0)  # no probing back up here
    for _ in range(8):  # 8 of ours when refused: someone else spends the rest
        other.acquire(t.sleep)
    other.throttled(None, Quota(30, 60.0))
    share = other.state().quota_share
    assert share is not None and share < 8
    sent = []
    for _ in range(3 * share):
        other.acquire(t.sleep)
        sent.append(t.now)
    assert all(sum(1 for s in sent if a <= s < a + 60.0) <= share for a in sent)
