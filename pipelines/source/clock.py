"""The gateway's time as this process knows it: the local clock plus an offset learnt when the
gateway refuses a signature as expired (401 `APIGW.0301` "signature expired", which it does
when `X-Sdk-Date` is more than 15 minutes from its own clock).

The vendor's SDKs do not correct a skewed clock; a machine whose clock drifted would otherwise
get nothing but 401s. The offset is the process's (every run, every worker: one machine, one
clock); signatures and the expiry of temporary credentials and tokens (stated in the
gateway's time) use the corrected clock.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)

# An offset beyond this is not a drifting clock but a wrong answer or a wrong machine: refused.
MAX_OFFSET_S = 24 * 3600.0
# Offsets closer than this to the one in use are the same (the gateway's times have 1 s steps).
SAME_OFFSET_S = 2.0

_SERVER_TIME = re.compile(r"server\s*time\s*:\s*(\d{8}T\d{6}Z)", re.IGNORECASE)
_EXPIRED = re.compile(r"signature\s+(?:has\s+|is\s+)?expired", re.IGNORECASE)


class ClockSkewError(ValueError):
    """The gateway's time is absurdly far from this machine's."""


class GatewayClock:
    """Local time plus the offset to the gateway's; thread-safe."""

    def __init__(self) -> None:
        self._offset_s = 0.0
        self._lock = threading.Lock()

    @property
    def offset_s(self) -> float:
        return self._offset_s

    def now(self) -> float:
        """The gateway's time now, epoch seconds."""
        return time.time() + self._offset_s

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def learn(self, server_time: float) -> bool:
        """Take the gateway's time `server_time` (epoch s, seen just now). True when the
        offset changed; ClockSkewError when it is absurd."""
        offset = server_time - time.time()
        if abs(offset) > MAX_OFFSET_S:
            raise ClockSkewError(
                f"the gateway's clock is {offset / 3600:+.1f} h from this machine's: more than "
                f"{MAX_OFFSET_S / 3600:.0f} h is not a drift to correct; set this machine's "
                "clock (NTP)"
            )
        with self._lock:
            if abs(offset - self._offset_s) < SAME_OFFSET_S:
                return False
            self._offset_s = offset
        # once per change of the offset (in practice once per process)
        log.warning(
            "this machine's clock is %+.0f s from the API gateway's: requests are signed with "
            "the gateway's time from now on (fix the clock: NTP)",
            -offset,
        )
        return True

    def reset(self) -> None:
        """Back to the local clock (tests)."""
        with self._lock:
            self._offset_s = 0.0


CLOCK = GatewayClock()


def signature_expired(error_code: str | None, error_msg: str | None) -> bool:
    """Whether a 401 says the request's signature time is too far from the gateway's."""
    return (error_code or "").endswith(".0301") and bool(_EXPIRED.search(error_msg or ""))


def gateway_time(error_msg: str | None, date_header: str | None) -> float | None:
    """The gateway's time from its message (`server time:YYYYMMDDTHHMMSSZ`) or its `Date`
    header, epoch seconds; None when neither says."""
    found = _SERVER_TIME.search(error_msg or "")
    if found is not None:
        try:
            moment = datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return moment.timestamp()
        except ValueError:
            pass
    if date_header:
        try:
            return parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return None
    return None
