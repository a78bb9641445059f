"""The request rate toward the API: one adaptive limiter per quota (a user at an endpoint) in the
process, asked by every worker of every run before each send.

Huawei Cloud's gateway throttles per user with 429 `APIG.0308`/`APIGW.0308`, often without
`Retry-After`, sometimes stating the quota (`limit:100,time:1 minute`); the ModelArts quota is
not published. The limiter learns it from the answers:

- a stated quota is honoured exactly: at most `limit` sends in any `window` (a sliding log of
  this process's sends), so a throttled run goes exactly as fast as the quota lets it;
- `Retry-After` pauses every worker until then, at the same rate;
- a bare 429 (no limit, no Retry-After) halves the rate (once per second at most: one
  congestion event, many workers) and pauses every worker (1 s, doubling while throttles
  follow each other, at most 60 s); what this process sent in the last minute is taken as a
  provisional per-minute quota, kept like a stated one until the gateway states one;
- after `quiet_s` without a throttling answer the rate probes back up (x1.5 a step), to the
  configured ceiling (MODELARTS_MAX_REQUESTS_PER_S; 0: none); a stated quota's share of the
  window (lowered when the quota is found shared with another process) probes back up to it,
  a provisional one grows (x1.5) where it binds.

Interface (for the workers and anything that scales them, e.g. concurrency control):
`acquire()` before every send (blocks as long as needed; returns the seconds waited);
`throttled(retry_after_s, quota)` on every throttling answer (returns the pause imposed);
`state()` a snapshot: current rate, ceiling, quota, pause left, totals. Thread-safe.
`shared_limiter(key, ceiling)` returns the process's one limiter for a quota key.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_QUOTA_TEXT = re.compile(
    r"limit\s*:\s*(\d+)\s*,\s*time\s*:\s*(\d+)\s*(second|minute|hour|day)", re.IGNORECASE
)
_UNIT_S = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


@dataclass(frozen=True)
class Quota:
    """A quota the gateway stated: `limit` requests per `window_s` seconds."""

    limit: int
    window_s: float

    def __str__(self) -> str:
        return f"{self.limit} per {self.window_s:g} s"


def parse_quota(message: str | None) -> Quota | None:
    """The quota of a throttling message (`...limit:60,time:1 minute`), or None."""
    found = _QUOTA_TEXT.search(message or "")
    if found is None:
        return None
    limit, count = int(found.group(1)), int(found.group(2))
    window_s = count * _UNIT_S[found.group(3).lower()]
    return Quota(limit, window_s) if limit > 0 and window_s > 0 else None


@dataclass(frozen=True)
class LimiterState:
    """A snapshot of a limiter (rates in requests/s; `math.inf`: no limit)."""

    rate_per_s: float
    ceiling_per_s: float
    quota: Quota | None
    quota_share: int | None
    paused_for_s: float
    throttled: int
    waited_s: float

    def as_metadata(self) -> dict[str, float | str]:
        def shown(rate: float) -> float | str:
            return "none" if math.isinf(rate) else round(rate, 3)

        return {
            "limiter_rate_per_s": shown(self.rate_per_s),
            "limiter_ceiling_per_s": shown(self.ceiling_per_s),
            "limiter_quota": str(self.quota) if self.quota else "none stated",
            "limiter_waited_s": round(self.waited_s, 1),
        }


class RateLimiter:
    """At most `rate` requests per second (bursts up to `burst`), adapted to throttling
    answers as the module's doc says; `rate` 0 means no ceiling."""

    MIN_RATE = 0.1  # requests/s: a bare 429 never stops a run, it slows it
    DECREASE = 0.5
    INCREASE = 1.5
    FIRST_PAUSE_S = 1.0
    MAX_PAUSE_S = 60.0
    RATE_SAMPLE_S = 5.0  # the observed rate a cut starts from
    # Sends remembered (at most this many, this long): when a quota is first stated, how many
    # of its window were ours tells whether another client shares it.
    HISTORY = 10_000
    HISTORY_S = 3600.0
    # Our clock and the gateway's see a send a round trip apart: a stated window is kept this
    # much longer, so a send never lands in the window it was counted out of.
    WINDOW_MARGIN_S = 1.0

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        quiet_s: float = 10.0,
        guess_window_s: float = 60.0,
    ):
        if rate < 0:
            raise ValueError("a rate limit cannot be negative")
        self._clock = clock
        self._lock = threading.Lock()
        self.quiet_s = quiet_s
        # the window a bare 429's quota is guessed over: a minute, as this gateway's quotas
        # are (a per-second limit, the gateway's default of 200/s, sits far above the
        # ceiling of 20/s); shorter in tests
        self.guess_window_s = guess_window_s
        self._ceiling = math.inf if rate <= 0 else float(rate)
        self._burst_setting = burst
        self._rate = self._ceiling
        self._tokens = self._burst()
        now = clock()
        self._updated = now
        self._paused_until = now
        self._last_throttle = -math.inf
        self._last_change = now
        self._last_cut = -math.inf
        self._slow_start = True  # doubling until the first throttling answer
        self._pause_s = 0.0
        self._sends: deque[float] = deque(maxlen=self.HISTORY)
        self._quota: Quota | None = None
        self._stated = False  # the gateway stated `_quota`; else it is our guess from a bare 429
        self._share = 0
        self.throttled_total = 0
        self.waited_total_s = 0.0
        self.answered_total = 0
        self.answered_total_s = 0.0

    @property
    def rate(self) -> float:
        """The ceiling as configured (0: none), as the token bucket it replaces named it."""
        return 0.0 if math.isinf(self._ceiling) else self._ceiling

    @property
    def burst(self) -> float:
        return self._burst()

    def set_ceiling(self, rate: float) -> None:
        """The most this process may send per second (0: no ceiling); a later run's setting
        replaces an earlier one's."""
        ceiling = math.inf if rate <= 0 else float(rate)
        with self._lock:
            self._ceiling = ceiling
            # never throttled: the ceiling is the rate; else it only bounds what was learnt
            self._rate = ceiling if self.throttled_total == 0 else min(self._rate, ceiling)

    def _burst(self) -> float:
        if math.isinf(self._ceiling) and self._burst_setting is None:
            return math.inf
        burst = self._burst_setting if self._burst_setting is not None else self._ceiling
        return max(1.0, burst)

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait until this send may go; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._delay(self._clock())
                if delay <= 0:
                    self.waited_total_s += waited
                    return waited
            sleep(delay)
            waited += delay

    def _delay(self, now: float) -> float:
        """0 and the send counted, or how long to wait first (under the lock)."""
        if now < self._paused_until:
            return max(0.001, self._paused_until - now)
        self._probe(now)
        horizon = max(self.HISTORY_S, self._window_s())
        while self._sends and self._sends[0] <= now - horizon:
            self._sends.popleft()
        if self._quota is not None:
            window = self._window_s()
            count, oldest = self._in_window(now, window)
            if count >= self._share:
                return max(0.001, oldest + window - now)
        if not math.isinf(self._rate):
            burst = min(self._burst(), max(1.0, self._rate))
            self._tokens = min(burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1.0 - 1e-9:
                # at least 1 ms: a wait too small to move the clock would never end
                return max(0.001, (1.0 - self._tokens) / self._rate)
            self._tokens -= 1.0
        else:
            self._updated = now
        self._sends.append(now)
        return 0.0

    def _window_s(self) -> float:
        return self._quota.window_s + self.WINDOW_MARGIN_S if self._quota else 0.0

    def _probe(self, now: float) -> None:
        """After a quiet period, one step back up toward the ceiling (or the stated quota)."""
        if now - max(self._last_throttle, self._last_change) < self.quiet_s:
            return
        if self._quota is not None and self._share_may_grow(now):
            cap = self._quota.limit if self._stated else math.inf
            self._share = int(min(cap, math.ceil(self._share * self.INCREASE)))
            self._last_change = now
            log.info("no throttling for %.0f s: up to %d requests per window",
                     self.quiet_s, self._share)  # fmt: skip
            return
        if self._rate < self._ceiling:
            raised = self._rate * self.INCREASE
            # with no ceiling, far above what was throttled is as good as none
            self._rate = raised if raised < min(self._ceiling, 1e4) else self._ceiling
            self._last_change = now
            self._pause_s = 0.0
            log.info("no throttling for %.0f s: rate up to %s/s", self.quiet_s, _shown(self._rate))

    def _share_may_grow(self, now: float) -> bool:
        """A stated quota's share grows back to it; a guessed one grows only where it binds
        (sending below it proves nothing)."""
        assert self._quota is not None
        if self._stated:
            return self._share < self._quota.limit
        return self._in_window(now, self._window_s())[0] >= self._share

    def answered(self, seconds: float) -> None:
        """A send was answered (not throttled) after `seconds`: what `Concurrency` scales by."""
        with self._lock:
            self.answered_total += 1
            self.answered_total_s += seconds

    def counters(self) -> tuple[int, float, int, float]:
        """(answers, their seconds, throttling answers, seconds sends waited) so far."""
        with self._lock:
            return (
                self.answered_total,
                self.answered_total_s,
                self.throttled_total,
                self.waited_total_s,
            )

    def throttled(self, retry_after_s: float | None = None, quota: Quota | None = None) -> float:
        """The gateway refused a send for throttling: slow every worker. Returns the pause."""
        with self._lock:
            now = self._clock()
            self.throttled_total += 1
            self._last_throttle = now
            if quota is not None:
                pause = self._learn_quota(now, quota)
            elif retry_after_s is not None:
                pause = retry_after_s  # the gateway said when: no need to guess a rate
            else:
                guessed = self._guess_quota(now)  # first: it may see the quota shared
                pause = max(self._cut(now), guessed)
            if retry_after_s is not None:
                pause = max(pause, retry_after_s)
            self._paused_until = max(self._paused_until, now + pause)
            # quiet means sending without being throttled: time spent paused does not count
            self._last_change = max(self._last_change, self._paused_until)
            return max(0.0, self._paused_until - now)

    def _guess_quota(self, now: float) -> float:
        """A bare 429: this gateway's quotas are per minute (API.md), so what was admitted in
        the last minute is taken as the quota until the gateway says otherwise."""
        if self._quota is not None and self._stated:
            return self._learn_quota(now, self._quota)
        if self._quota is None:
            count, _ = self._in_window(now, self.guess_window_s + self.WINDOW_MARGIN_S)
            if count < 2:
                return 0.0  # nothing to learn from: the rate cut alone
            self._quota, self._share = Quota(count, self.guess_window_s), count
            log.warning("throttled after %d requests in a minute: every worker keeps to that "
                        "per minute, probing up when it holds", count)  # fmt: skip
            return self._learn_quota(now, self._quota)
        return self._learn_quota(now, self._quota)

    def _learn_quota(self, now: float, quota: Quota) -> float:
        if quota != self._quota or (not self._stated and quota is not self._quota):
            log.warning("the gateway states a quota of %s: every worker keeps under it", quota)
            self._quota, self._share, self._stated = quota, quota.limit, True
        window = self._window_s()
        count, _ = self._in_window(now, window)
        if count < self._share and now - self._last_cut >= 1.0:
            # refused below the quota: another client (another process of the same user)
            # spends part of it; keep to what was left to us, a little under
            self._share = max(1, count - max(1, count // 20))
            self._last_cut = now
            log.warning("throttled at %d requests of a quota of %s: the quota is shared; "
                        "this process keeps to %d", count, quota, self._share)  # fmt: skip
        count, oldest = self._in_window(now, window)
        if count >= self._share:
            return max(0.0, oldest + window - now)
        return window / max(1, self._share)

    def _in_window(self, now: float, window: float) -> tuple[int, float]:
        """(our sends in the last `window` s, the time of the `share`-th most recent of them
        when there are that many); walks back from the newest only as far as needed."""
        count, oldest = 0, now
        for sent in reversed(self._sends):
            if sent <= now - window:
                break
            count += 1
            if count == self._share:
                oldest = sent
        return count, oldest

    def _cut(self, now: float) -> float:
        if now - self._last_cut >= max(1.0, self._pause_s):
            horizon = now - self.RATE_SAMPLE_S
            recent = itertools.takewhile(lambda t: t > horizon, reversed(self._sends))
            observed = sum(1 for _ in recent) / self.RATE_SAMPLE_S
            base = min(self._rate, max(observed, self.MIN_RATE))
            self._rate = max(self.MIN_RATE, base * self.DECREASE)
            self._tokens = min(self._tokens, 1.0)
            self._pause_s = min(self.MAX_PAUSE_S, max(self.FIRST_PAUSE_S, self._pause_s * 2))
            self._last_cut = now
            log.warning("throttled (no quota stated): every worker pauses %.0f s, then %s/s",
                        self._pause_s, _shown(self._rate))  # fmt: skip
        return self._pause_s

    def state(self) -> LimiterState:
        with self._lock:
            now = self._clock()
            return LimiterState(
                rate_per_s=self._rate,
                ceiling_per_s=self._ceiling,
                quota=self._quota,
                quota_share=self._share if self._quota else None,
                paused_for_s=max(0.0, self._paused_until - now),
                throttled=self.throttled_total,
                waited_s=self.waited_total_s,
            )

    def __repr__(self) -> str:
        return f"RateLimiter(rate={_shown(self._rate)}/s, ceiling={_shown(self._ceiling)}/s)"


class Concurrency:
    """How many workers an extraction keeps busy, adapted to the answers (AIMD, as TCP does):

    - after each window of answers (twice the workers, at least 4) that came back slow (a mean
      of `SLOW_ANSWER_S` or more: a round trip, not loopback), with no throttling answer and
      the limiter making sends wait less than a tenth of the answers' time (more workers would
      only wait there), twice the workers until the first throttling answer (TCP's slow start:
      a region's round trip leaves most of a short run to the ramp otherwise), one more after
      it, up to `cap` (MODELARTS_MAX_WORKERS);
    - half the workers (at least 1) on a throttling answer: the gateway says too much; and
      from then on never as many as were throttled (the quota the limiter learnt sets the pace,
      more workers would only wait for it).

    It reads the counters of the process's limiter, which every worker of every run feeds, so
    another run's throttling slows this one's workers too. `update()` is thread-safe and
    returns the number of workers wanted; `history` lists (workers, why) at each change.
    """

    SLOW_ANSWER_S = 0.02
    MIN_WINDOW = 4
    CUT_EVERY_S = 1.0

    def __init__(self, limiter: RateLimiter, start: int, cap: int):
        self._limiter = limiter
        self._lock = threading.Lock()
        self.cap = max(1, cap, start)
        self.workers = max(1, min(start, self.cap))
        self._base = limiter.counters()
        self._last_cut = -math.inf
        self._slow_start = True  # doubling until the first throttling answer
        self.history: list[tuple[int, str]] = [(self.workers, "start")]

    def update(self) -> int:
        with self._lock:
            answers, answer_s, throttled, waited_s = counters = self._limiter.counters()
            base_answers, base_answer_s, base_throttled, base_waited_s = self._base
            if throttled > base_throttled:
                self._base = counters
                now = time.monotonic()
                # the answers of the sends in flight when it throttled are one event
                if self.workers > 1 and now - self._last_cut >= self.CUT_EVERY_S:
                    self._last_cut = now
                    self.cap = min(self.cap, self.workers - 1)
                    self._slow_start = False
                    self._change(max(1, self.workers // 2), "throttled")
                return self.workers
            window = answers - base_answers
            if window < max(self.MIN_WINDOW, 2 * self.workers):
                return self.workers
            self._base = counters
            spent = answer_s - base_answer_s
            if (
                self.workers < self.cap
                and spent / window >= self.SLOW_ANSWER_S
                and waited_s - base_waited_s < spent / 10
            ):
                more = self.workers if self._slow_start else 1
                self._change(
                    min(self.cap, self.workers + more),
                    f"answers take {1000 * spent / window:.0f} ms",
                )
            return self.workers

    def _change(self, workers: int, why: str) -> None:
        self.workers = workers
        self.history.append((workers, why))
        log.debug("%d workers (%s)", workers, why)


def _shown(rate: float) -> str:
    return "unlimited" if math.isinf(rate) else f"{rate:.2f}"


_shared: dict[str, RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(key: str, ceiling: float) -> RateLimiter:
    """The process's one limiter for the quota `key` (a user at an endpoint), created on first
    use; `ceiling` (requests/s, 0: none) is the latest run's setting."""
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = RateLimiter(ceiling)
        else:
            limiter.set_ceiling(ceiling)
        return limiter


def forget_shared_limiters() -> None:
    """Drop the process's limiters and what they learnt (tests: a later simulator may get an
    earlier one's port, and with it its key)."""
    with _shared_lock:
        _shared.clear()
