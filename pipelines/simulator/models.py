"""Data the simulator generates and serves: events, services, and the ground truth of attempts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One record of a service's event log, as the API returns it."""

    occur_time: int
    event_type: str
    event_info: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "event_info": self.event_info,
            "occur_time": self.occur_time,
        }


@dataclass(frozen=True)
class ServiceInfo:
    """One entry of the service listing (fields as the real listing has them)."""

    service_id: str
    service_name: str
    status: str
    infer_type: str
    owner: str
    publish_at: int
    update_time: int
    description: str = ""
    tenant: str = ""
    project: str = ""
    progress: int = 100
    invocation_times: int = 0
    failed_times: int = 0
    is_shared: bool = False
    shared_count: int = 0
    workspace_id: str = "0"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PhaseTruth:
    """One phase of one model in one attempt. end/duration are None while in progress."""

    model: str
    phase: str
    start_ms: int
    end_ms: int | None
    duration_ms: int | None
    status: str  # succeeded | failed | in_progress


@dataclass(frozen=True)
class AttemptTruth:
    """What really happened in one deployment attempt (the generator's intent)."""

    service_id: str
    attempt_start: int
    outcome: str  # succeeded | failed | superseded | in_progress
    ended_at_ms: int | None
    failure_phase: str | None
    failure_reason: str | None
    failure_cause: str | None
    models: tuple[str, ...]
    time_to_running_ms: int | None
    phases: tuple[PhaseTruth, ...]
    # the cause category the failure text carries (families.py); the family of its texts
    failure_category: str | None = None
    family: str = "reference"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        data["phases"] = [asdict(p) for p in self.phases]
        return data


@dataclass
class History:
    """A generated event history and its ground truth. end_ms is exclusive."""

    services: list[ServiceInfo]
    events_by_service: dict[str, list[Event]]
    attempts: list[AttemptTruth]
    start_ms: int
    end_ms: int

    @property
    def event_count(self) -> int:
        return sum(len(events) for events in self.events_by_service.values())
