"""Hand-written event logs for the edges the generated histories rarely hit, and the rules table."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from pipelines.simulator import vocabulary as v
from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import day_parameters, rebuild_marts
from pipelines.windows import TimeWindow
from tests.integration.conftest import add_events
from tests.queries import rows, scalar

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_795_046_400_000  # 2026-11-19T00:00:00Z
WINDOW = TimeWindow(T0, T0 + DAY)
WINDOW_DAY = day_parameters(WINDOW)["day"]
M = "TF 3.0.0"

CAUSE_CASES = [
    pytest.param(v.failure_text(phase, "my model [beta] 0.0.1", r.text), r.cause, id=f"{phase}-{i}")
    for phase, reasons in v.REASONS.items()
    for i, r in enumerate(reasons)
] + [
    pytest.param(v.failure_text(v.MODEL_STARTUP, M, v.long_startup_reason().text), "model_startup"),
    pytest.param("deploy service failed: the moon is in the wrong phase", "other"),
]


@pytest.mark.parametrize(("failure_text", "cause"), CAUSE_CASES)
def test_seeded_rules_give_every_vocabulary_reason_its_cause(
    engine: Engine, failure_text: str, cause: str
) -> None:
    first_match = (
        "select cause from analytics.failure_cause_rules where :t ~* pattern"
        " order by priority, rule_id limit 1"
    )
    assert scalar(engine, first_match, t=failure_text) == cause


def _load_and_rebuild(engine: Engine, events: list[tuple[int, str, str]]) -> None:
    with WindowLoad(engine, WINDOW) as load:
        add_events(load, [ServiceEvent("svc", T0 + t, kind, info) for t, kind, info in events])
        load.commit()
    rebuild_marts(engine, [WINDOW_DAY])


def _attempts(engine: Engine) -> list[Any]:
    return rows(
        engine,
        "select attempt_start - :t0, outcome, attempt_end - :t0, failure_phase,"
        " failure_cause, models from analytics.deployment_attempts order by attempt_start",
        t0=T0,
    )


def _success(start: int) -> list[tuple[int, str, str]]:
    return [
        (start, "normal", v.START_DEPLOY),
        (start + 1, "normal", v.building_image(M)),
        (start + 2, "normal", v.build_image_success(M)),
        (start + 3, "normal", v.PREPARING_ENVIRONMENT),
        (start + 4, "normal", v.prepare_environment_success(M)),
        (start + 4, "normal", v.schedule_resource_success(M)),
        (start + 5, "normal", v.pulling_image(M)),
        (start + 6, "normal", v.pull_image_success(M)),
        (start + 7, "normal", v.starting_model(M)),
        (start + 8, "normal", v.start_model_success(M)),
        (start + 9, "normal", v.SERVICE_RUNNING),
    ]


def test_after_success_incidents_and_late_failures_change_nothing(engine: Engine) -> None:
    _load_and_rebuild(
        engine,
        [
            *_success(1000),
            (1009, "abnormal", v.instance_restarted(M)),  # same millisecond as running
            (5000, "abnormal", v.instance_restarted(M)),
            (6000, "abnormal", v.start_model_failed(M, "OOMKilled")),
        ],
    )
    assert _attempts(engine) == [(1000, "succeeded", 1009, None, None, [M])]


def test_a_terminal_sharing_a_millisecond_with_a_start_closes_the_previous_attempt(
    engine: Engine,
) -> None:
    failing = [
        (1000, "normal", v.START_DEPLOY),
        (1001, "normal", v.building_image(M)),
        (2000, "abnormal", v.build_image_failed(M, "image size exceeds the 20 GB limit")),
    ]
    _load_and_rebuild(engine, failing + _success(2000))
    assert _attempts(engine) == [
        (1000, "failed", 2000, "image_building", "image_build", [M]),
        (2000, "succeeded", 2009, None, None, [M]),
    ]


def test_deploy_service_failed_is_charged_to_the_phase_in_progress(engine: Engine) -> None:
    events = [e for e in _success(1000) if e[0] <= 1007]  # hangs in model startup
    events.append((9000, "abnormal", v.deploy_service_failed("deployment timeout")))
    _load_and_rebuild(engine, events)
    assert _attempts(engine) == [(1000, "failed", 9000, "model_startup", "timeout", [M])]


def test_unknown_failure_reasons_are_unclassified_until_a_rule_is_added(engine: Engine) -> None:
    events = [
        (1000, "normal", v.START_DEPLOY),
        (1001, "normal", v.building_image(M)),
        (1002, "abnormal", v.build_image_failed(M, "gremlins")),
        (1003, "abnormal", "a text nobody documented"),
    ]
    with engine.begin() as conn:  # a catch-all seeded rule would hide the case: drop it here
        conn.execute(text("delete from analytics.failure_cause_rules where cause = 'image_build'"))
    _load_and_rebuild(engine, events)
    assert _attempts(engine)[0][4] == "unclassified"
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into analytics.failure_cause_rules (priority, pattern, cause)"
                " values (50, 'gremlins', 'gremlins')"
            )
        )
    rebuild_marts(engine, [WINDOW_DAY])
    assert _attempts(engine)[0][4] == "gremlins"
    causes = "select failure_cause, failures from analytics.deployment_failure_causes_daily"
    assert rows(engine, causes) == [("gremlins", 1)]
    unknown = "select event_info, events from analytics.unclassified_event_texts_daily"
    assert rows(engine, unknown) == [("a text nobody documented", 1)]


def test_an_invalid_rule_pattern_is_refused(engine: Engine) -> None:
    with pytest.raises(Exception, match="regular expression"), engine.begin() as conn:
        conn.execute(
            text(
                "insert into analytics.failure_cause_rules (priority, pattern, cause)"
                " values (1, '([unclosed', 'x')"
            )
        )
