"""The event texts match docs/VOCABULARY.md and the vendor sample."""

from __future__ import annotations

import pytest

from pipelines.simulator import vocabulary as v


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (v.building_image("TF 3.0.0"), "building image for model [TF 3.0.0]"),
        (v.build_image_success("TF 3.0.0"), "model (TF 3.0.0) build image success"),
        (v.prepare_environment_success("TF 3.0.0"), "[TF 3.0.0] prepare environment success"),
        (v.schedule_resource_success("TF 3.0.0"), "[TF 3.0.0] schedule resource success"),
        (v.pulling_image("TF 3.0.0"), "[TF 3.0.0] pulling model image"),
        (v.pull_image_success("TF 3.0.0"), "[TF 3.0.0] pull image success"),
        (v.starting_model("TF 3.0.0"), "[TF 3.0.0] starting model"),
        (v.start_model_success("模型 1.0.0"), "[模型 1.0.0] start model success"),
        (v.instance_restarted("x 1.0.0"), "[x 1.0.0] instance restarted unexpectedly"),
        (v.scale_instances(1, 2), "scale service instances from 1 to 2"),
        (
            v.failure_text(v.DEPLOYMENT, "", "deployment timeout"),
            "deploy service failed: deployment timeout",
        ),
        (
            v.failure_text(v.IMAGE_BUILDING, "my model [beta] 0.0.1", "r"),
            "model (my model [beta] 0.0.1) build image failed: r",
        ),
    ],
)
def test_texts(text: str, expected: str) -> None:
    assert text == expected


def test_every_failure_phase_has_reasons_with_known_causes() -> None:
    assert set(v.REASONS) == set(v.FAILURE_PHASES)
    for reasons in v.REASONS.values():
        assert len(reasons) >= 3
        assert {r.cause for r in reasons} <= set(v.CAUSES)


def test_scheduling_failures_are_insufficient_resources() -> None:
    for reason in v.REASONS[v.RESOURCE_SCHEDULING]:
        assert reason.text.startswith("insufficient resources")
        assert reason.cause == "insufficient_resources"


def test_long_reason_is_several_kb() -> None:
    text = v.long_startup_reason().text
    assert len(text.encode()) > 3000 and "\n" in text and '"' in text and "'" in text
