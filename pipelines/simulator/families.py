"""The families of event texts a simulated service emits, for the same attempts and truth.

`reference`: the 2019 reference example (docs/VOCABULARY.md), with an event per phase begin and
success. `console`: the texts the console documents today (docs/API.md, "The texts
services emit"): a start, a success and failure texts only, some naming their phase, some not;
"Insufficient resources. Wait until ..." while scheduling waits (not a failure). `mix`: each
service one or the other (odd service indexes console).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pipelines.simulator import vocabulary as v

REFERENCE: Final = "reference"
CONSOLE: Final = "console"
MIX: Final = "mix"
FAMILIES: Final = (REFERENCE, CONSOLE)
VOCABULARIES: Final = (REFERENCE, CONSOLE, MIX)

CONSOLE_START: Final = "The service starts to deploy."
CONSOLE_WAITING: Final = "Insufficient resources. Wait until idle resources are sufficient."

# The cause category a failure text carries by itself (sql/rules/event_text_rules.tsv); a text
# not listed leaves it to the reason (Reason.category, what the cause rules find in it).
_REFERENCE_CATEGORY: Final = {
    v.IMAGE_BUILDING: "image_build",
    v.RESOURCE_SCHEDULING: "insufficient_resources",
    v.IMAGE_PULLING: "image_pull",
    v.MODEL_STARTUP: "startup_health",
}
# The phases a console failure text names; the others are "Service {name} failed. Error: ...".
CONSOLE_NAMED_PHASES: Final = (v.IMAGE_BUILDING, v.RESOURCE_SCHEDULING, v.MODEL_STARTUP)


@dataclass(frozen=True)
class FailureText:
    text: str
    category: str


def family_of_service(vocabulary: str, index: int) -> str:
    """The family service number `index` emits under `vocabulary` (reference|console|mix)."""
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"vocabulary must be one of {', '.join(VOCABULARIES)}, not {vocabulary!r}")
    if vocabulary == MIX:
        return CONSOLE if index % 2 else REFERENCE
    return vocabulary


def service_name(service_id: str) -> str:
    """The name console texts give a service."""
    return f"svc-{service_id[:8]}"


def start_text(family: str) -> str:
    return CONSOLE_START if family == CONSOLE else v.START_DEPLOY


def success_text(family: str, service_id: str) -> str:
    if family == CONSOLE:
        return f"Service {service_name(service_id)} started."
    return v.SERVICE_RUNNING


def _scarce_resource(reason: str) -> str:
    lowered = reason.lower()
    for needle, resource in (("gpu", "GPU"), ("ascend", "NPU"), ("cpu", "CPU")):
        if needle in lowered:
            return resource
    return "resources"


def failure_text(
    family: str, phase: str, model: str, reason: v.Reason, service_id: str
) -> FailureText:
    """The abnormal event_info of a failure in `phase`, and the cause category it carries."""
    if family == REFERENCE:
        category = _REFERENCE_CATEGORY.get(phase, reason.category)
        return FailureText(v.failure_text(phase, model, reason.text), category)
    name = service_name(service_id)
    if phase == v.IMAGE_BUILDING:
        return FailureText(
            f"Failed to create model image {model}. Error: {reason.text}", "image_build"
        )
    if phase == v.RESOURCE_SCHEDULING:
        return FailureText(
            f"Insufficient {_scarce_resource(reason.text)}. The scheduling failed. "
            f"Supplementary information: {reason.text}",
            "insufficient_resources",
        )
    if phase == v.MODEL_STARTUP:
        return FailureText(
            f"Failed to start service {name}. Error: {reason.text}", "startup_health"
        )
    if phase == v.DEPLOYMENT and reason.cause == "timeout":
        return FailureText(f"Service deployment timed out. Error: {reason.text}", "timeout")
    return FailureText(f"Service {name} failed. Error: {reason.text}", reason.category)


# Texts no rule knows, for the coverage check: ids and numbers vary, the shapes do not.
NOVEL_TEMPLATES: Final = (
    "node {hex} evicted pod {uuid} after {n} ms",
    "autoscaler: target '{word}' reached {n} replicas",
    'certificate "{word}" of listener {hex} renewed',
)
