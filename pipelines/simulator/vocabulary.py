"""Event texts of docs/VOCABULARY.md and the failure reasons the simulator draws from, per phase.

{m} is a model label "NAME VERSION". Every failure reason carries its cause category, so the
ground truth never has to re-parse a text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NORMAL: Final = "normal"
ABNORMAL: Final = "abnormal"

IMAGE_BUILDING: Final = "image_building"
ENVIRONMENT_PREPARATION: Final = "environment_preparation"
RESOURCE_SCHEDULING: Final = "resource_scheduling"
IMAGE_PULLING: Final = "image_pulling"
MODEL_STARTUP: Final = "model_startup"
DEPLOYMENT: Final = "deployment"

PHASES: Final = (
    IMAGE_BUILDING,
    ENVIRONMENT_PREPARATION,
    RESOURCE_SCHEDULING,
    IMAGE_PULLING,
    MODEL_STARTUP,
)
FAILURE_PHASES: Final = (*PHASES, DEPLOYMENT)
CAUSES: Final = (
    "insufficient_resources",
    "image_pull",
    "image_build",
    "environment",
    "model_startup",
    "timeout",
    "other",
)

START_DEPLOY: Final = "start to deploy service"
PREPARING_ENVIRONMENT: Final = "preparing environment"
SERVICE_RUNNING: Final = "service is running"
STOP_SERVICE: Final = "stop service"
SERVICE_STOPPED: Final = "service stopped"
UPDATE_CONFIGURATION: Final = "update service configuration"
UNKNOWN_TEXT: Final = "custom hook executed: warmup"


def building_image(model: str) -> str:
    return f"building image for model [{model}]"


def build_image_success(model: str) -> str:
    return f"model ({model}) build image success"


def build_image_failed(model: str, reason: str) -> str:
    return f"model ({model}) build image failed: {reason}"


def prepare_environment_success(model: str) -> str:
    return f"[{model}] prepare environment success"


def prepare_environment_failed(model: str, reason: str) -> str:
    return f"[{model}] prepare environment failed: {reason}"


def schedule_resource_success(model: str) -> str:
    return f"[{model}] schedule resource success"


def schedule_resource_failed(model: str, reason: str) -> str:
    """`reason` starts with "insufficient resources" (the detail follows it)."""
    return f"[{model}] schedule resource failed: {reason}"


def pulling_image(model: str) -> str:
    return f"[{model}] pulling model image"


def pull_image_success(model: str) -> str:
    return f"[{model}] pull image success"


def pull_image_failed(model: str, reason: str) -> str:
    return f"[{model}] pull image failed: {reason}"


def starting_model(model: str) -> str:
    return f"[{model}] starting model"


def start_model_success(model: str) -> str:
    return f"[{model}] start model success"


def start_model_failed(model: str, reason: str) -> str:
    return f"[{model}] start model failed: {reason}"


def deploy_service_failed(reason: str) -> str:
    return f"deploy service failed: {reason}"


def instance_restarted(model: str) -> str:
    return f"[{model}] instance restarted unexpectedly"


def scale_instances(before: int, after: int) -> str:
    return f"scale service instances from {before} to {after}"


@dataclass(frozen=True)
class Reason:
    """A failure reason text, its cause (failure_cause_rules) and the cause category the reason
    alone tells (the cause rules of sql/rules/event_text_rules.tsv; `unknown` when none)."""

    text: str
    cause: str
    category: str = "unknown"


# The first entries of each list are the common ones; the last are rarer and fall in `other`.
REASONS: Final[dict[str, tuple[Reason, ...]]] = {
    IMAGE_BUILDING: (
        Reason("dockerfile error: unknown instruction: RUNN at line 7", "image_build"),
        Reason(
            "pip dependency conflict: tensorflow 2.15.0 depends on numpy<2.0.0,>=1.23.5",
            "image_build",
        ),
        Reason("image size exceeds the 20 GB limit", "image_build"),
        Reason("build job was cancelled by the platform", "other"),
    ),
    ENVIRONMENT_PREPARATION: (
        Reason("failed to mount OBS path obs://models/output: access denied", "environment"),
        Reason("invalid environment variable MODEL_WORKERS='auto'", "environment"),
        Reason("config map service-config not found", "environment"),
        Reason("quota of the workspace is frozen", "other"),
    ),
    RESOURCE_SCHEDULING: (
        Reason(
            "insufficient resources: 0/12 nodes are available: 12 Insufficient nvidia.com/gpu.",
            "insufficient_resources",
            "insufficient_resources",
        ),
        Reason(
            "insufficient resources: 0/8 nodes are available: 5 Insufficient cpu, 3 Insufficient "
            "memory.",
            "insufficient_resources",
            "insufficient_resources",
        ),
        Reason(
            "insufficient resources: dedicated resource pool pool-a1b2 has no free Ascend 910",
            "insufficient_resources",
            "insufficient_resources",
        ),
        Reason("insufficient resources", "insufficient_resources", "insufficient_resources"),
    ),
    IMAGE_PULLING: (
        Reason(
            "ErrImagePull: rpc error: code = Unknown desc = failed to pull and unpack image",
            "image_pull",
            "image_pull",
        ),
        Reason(
            "manifest unknown: manifest tagged by 1.0.0 is not found", "image_pull", "image_pull"
        ),
        Reason("timeout: image pull did not finish within 600 s", "image_pull", "image_pull"),
        Reason("ImagePullBackOff: Back-off pulling image", "image_pull", "image_pull"),
        Reason("swr authorization token expired", "other"),
    ),
    MODEL_STARTUP: (
        Reason(
            "health check failed: GET /health returned 503 for 300 s",
            "model_startup",
            "startup_health",
        ),
        Reason(
            "OOMKilled: container exceeded its memory limit of 8Gi",
            "model_startup",
            "startup_health",
        ),
        Reason("exit code 1: ModuleNotFoundError: No module named 'torchvision'", "model_startup"),
        Reason(
            "CrashLoopBackOff: back-off restarting failed container",
            "model_startup",
            "startup_health",
        ),
        Reason("license check failed: no valid license for the inference runtime", "other"),
    ),
    DEPLOYMENT: (
        Reason("deployment timeout", "timeout", "timeout"),
        Reason("deployment timeout after 1800 s", "timeout", "timeout"),
        Reason("internal error, please contact technical support", "other"),
    ),
}

# Weights of REASONS entries: common first reasons, rare `other` ones at the end.
REASON_WEIGHTS: Final[dict[str, tuple[float, ...]]] = {
    phase: tuple(1.0 if r.cause != "other" else 0.25 for r in reasons)
    for phase, reasons in REASONS.items()
}


def failure_text(phase: str, model: str, reason: str) -> str:
    """The abnormal event_info of a failure in `phase` (model ignored for `deployment`)."""
    if phase == IMAGE_BUILDING:
        return build_image_failed(model, reason)
    if phase == ENVIRONMENT_PREPARATION:
        return prepare_environment_failed(model, reason)
    if phase == RESOURCE_SCHEDULING:
        return schedule_resource_failed(model, reason)
    if phase == IMAGE_PULLING:
        return pull_image_failed(model, reason)
    if phase == MODEL_STARTUP:
        return start_model_failed(model, reason)
    if phase == DEPLOYMENT:
        return deploy_service_failed(reason)
    raise ValueError(f"unknown phase {phase!r}")


def long_startup_reason() -> Reason:
    """A model startup failure of several KB: unicode, quotes and newlines (a pasted traceback)."""
    frames = "".join(
        f'\n  File "/home/ma-user/infer/模型/handler_{i}.py", line {40 + i}, in load — '
        f"weights[\"layer_{i}\"] = torch.load('ckpt/權重_{i}.pt') # ✓ «ok»"
        for i in range(30)
    )
    text = (
        "exit code 1: Traceback (most recent call last):"
        + frames
        + '\nRuntimeError: CUDA error: out of memory — "device 0" ‘GPU’ 显存不足 ☹'
    )
    return Reason(text, "model_startup")


MODEL_NAMES: Final = (
    "TF",
    "PyTorch",
    "resnet (v2)",
    "模型",
    "my model [beta]",
    "yolo v8",
    "bert-base",
    "MindSpore",
    "语音识别 (asr)",
    "xgboost",
)
