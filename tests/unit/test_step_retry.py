"""A failed day is retried by the step's retry policy, unless its error cannot pass by itself:
those fail the step at once (a Dagster `Failure` that allows no retries)."""

from __future__ import annotations

import pytest
from dagster import Failure

from pipelines.assets.events import service_events
from pipelines.assets.schedules import STEP_RETRY
from pipelines.failures import failing_fast
from pipelines.settings import ConfigError
from pipelines.source.errors import (
    AuthenticationError,
    CredentialRefusedError,
    ModelArtsAPIError,
    PagingError,
    RetriesExhaustedError,
)


def test_the_events_asset_has_the_step_retry_policy() -> None:
    assert service_events.op.retry_policy == STEP_RETRY
    assert STEP_RETRY.max_retries >= 2


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("list services: the API refused AK/SK ABCD… from X"),
        ConfigError("no project id"),
        ModelArtsAPIError(403, "ModelArts.0203", "no permission", "list services"),
        PagingError("pages overlap"),
    ],
)
def test_a_permanent_error_fails_at_once_with_its_message(error: Exception) -> None:
    with pytest.raises(Failure) as raised, failing_fast():
        raise error
    assert raised.value.allow_retries is False
    assert str(error) in (raised.value.description or "")
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        RetriesExhaustedError("events of service s: gave up after 7 attempts: ConnectionError"),
        CredentialRefusedError(401, "APIG.0307", "The token must be updated.", "events"),
        ConnectionResetError("connection reset"),
    ],
)
def test_a_transient_error_is_left_to_the_retry_policy(error: Exception) -> None:
    with pytest.raises(type(error)) as raised, failing_fast():
        raise error
    assert raised.value is error
