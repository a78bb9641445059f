"""Settings of a running simulator: credentials, token lifetime, paging semantics and faults."""

from __future__ import annotations

import time
from dataclasses import dataclass

FAULT_KINDS = ("throttle", "error_json", "error_html", "drop", "truncate", "slow")
OFFSET_MODES = ("page", "record")
# Which API generations serve the services: all /v1, all /v2, or half each (distinct services).
API_MODES = ("v1", "v2", "mixed")
# Which time of a v2 record start_time/end_time filter on (the vendor does not say).
TIME_FILTERS = ("update_at", "create_at")


@dataclass(frozen=True)
class SimulatorConfig:
    """All faults are off by default; `fault_rate` is split evenly across `fault_kinds`."""

    project_id: str = "0b1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e"
    username: str = "sim-user"
    password: str = "sim-password"
    domain: str = "sim-domain"
    region: str = "sim-region-1"
    # AK/SK signing: the permanent key pair; temporary keys come from the metadata endpoints
    access_key: str = "SIMULATORACCESSKEY01"
    secret_key: str = "sim-secret-key-9f8e7d6c5b4a3928171605f4e3d2c1b0a9"
    temporary_key_ttl_s: float = 86_400.0
    token_ttl_s: float = 86_400.0
    # Tokens and temporary keys stop working after this many seconds, whatever their expires_at
    # says (a server whose credentials die early); None: when expires_at says.
    credential_real_life_s: float | None = None
    iam_faults: bool = False  # IAM token requests get faults too (slow: the token arrives old)
    static_token: str | None = None
    offset_mode: str = "page"
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    retry_after_s: int = 1
    slow_s: float = 2.0
    # Every ModelArts and IAM answer waits this long first: the round trip of a real region's
    # gateway (tens of ms in the region, more across the internet); 0: loopback speed.
    latency_s: float = 0.0
    duplicate_rate: float = 0.0
    arrival_rate: float = 0.0
    malformed_rate: float = 0.0
    hostile: bool = False
    hostile_answers: bool = False
    seed: int = 0
    api: str = "v1"
    v2_time_filter: str = "update_at"
    # Chance that a v2 events page, once served, lets one of the service's records grow (a
    # crash loop: count + 1, update_at now), so counts move while a client pages.
    growth_rate: float = 0.0
    # Every /v1 ModelArts call answers 404 APIG.0101, as in a region that has discontinued the
    # old-version services (only /v2 is published there).
    v1_retired: bool = False
    # The gateway's per-credential quota of ModelArts calls per window (quota.py); 0: none.
    quota_per_window: int = 0
    quota_window_s: float = 60.0
    quota_answer: str = "stated"
    # The gateway's clock runs this far ahead of the machine's (negative: behind): signatures
    # are checked, and Date, token and key times are written, in its time.
    clock_offset_s: float = 0.0

    def now(self) -> float:
        """The gateway's time, epoch seconds."""
        return time.time() + self.clock_offset_s

    def __post_init__(self) -> None:
        if self.api not in API_MODES:
            raise ValueError(f"api must be one of {API_MODES}")
        if self.v2_time_filter not in TIME_FILTERS:
            raise ValueError(f"v2_time_filter must be one of {TIME_FILTERS}")
        if self.offset_mode not in OFFSET_MODES:
            raise ValueError(f"offset_mode must be one of {OFFSET_MODES}")
        unknown = set(self.fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if self.quota_per_window < 0 or self.quota_window_s <= 0:
            raise ValueError("quota_per_window must be >= 0 and quota_window_s > 0")
        if self.latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        for name in (
            "fault_rate",
            "duplicate_rate",
            "arrival_rate",
            "malformed_rate",
            "growth_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
