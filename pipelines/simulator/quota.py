"""The gateway's per-user quota: at most `limit` ModelArts calls per credential in each window
(a minute by default, fixed windows of the server's clock), answered as Huawei Cloud's gateway
answers: 429 `APIG.0308` "...policy user over ratelimit,limit:N,time:1 minute", without
`Retry-After` (the `answer` setting gives the other forms clients meet)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import orjson

from pipelines.simulator.responses import Response

# How a refusal reads: the real gateway's (limit stated, no Retry-After), a bare throttle
# (neither), or one with Retry-After (the seconds left in the window) and no limit.
QUOTA_ANSWERS = ("stated", "bare", "retry-after")


def _window_text(window_s: float) -> str:
    if window_s == 60:
        return "1 minute"
    return f"{window_s:g} second"


class Quota:
    """Admitted calls per credential in the current window; refused calls do not count."""

    def __init__(self, limit: int, window_s: float, answer: str, clock: Callable[[], float]):
        if answer not in QUOTA_ANSWERS:
            raise ValueError(f"quota answer must be one of {QUOTA_ANSWERS}")
        self.limit = limit
        self.window_s = window_s
        self.answer = answer
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # who -> (window index, calls admitted)
        self._lock = threading.Lock()

    def refuse(self, who: str) -> Response | None:
        """None when `who` may make this call (counted), else the gateway's 429."""
        if self.limit <= 0:
            return None
        now = self._clock()
        index = math.floor(now / self.window_s)
        with self._lock:
            window, used = self._windows.get(who, (index, 0))
            if window != index:
                window, used = index, 0
            if used < self.limit:
                self._windows[who] = (window, used + 1)
                return None
        return self._throttled((index + 1) * self.window_s - now)

    def _throttled(self, left_s: float) -> Response:
        if self.answer == "stated":
            message = (
                "The throttling threshold has been reached: policy user over ratelimit,"
                f"limit:{self.limit},time:{_window_text(self.window_s)}"
            )
            headers: dict[str, str] = {}
        else:
            message = "The throttling threshold has been reached."
            headers = (
                {"Retry-After": str(math.ceil(left_s))} if self.answer == "retry-after" else {}
            )
        body = orjson.dumps({"error_code": "APIG.0308", "error_msg": message})
        return Response(429, body, headers=headers)
