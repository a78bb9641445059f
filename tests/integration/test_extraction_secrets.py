"""The IAM password and the tokens never show: not in logs, output, errors, reprs or metadata."""

from __future__ import annotations

import logging

import pytest
from dagster import DagsterInstance, materialize

from pipelines import settings
from pipelines.assets.events import service_events, services
from pipelines.definitions import build_resources
from pipelines.simulator.process import running_simulator
from pipelines.source.auth import IAMPasswordAuth
from tests.integration.conftest import simulator_days, simulator_env

pytestmark = pytest.mark.integration

PASSWORD = "pw-Very$ecret-7d1c"


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_password_and_tokens_never_appear_in_a_run_with_iam_auth(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    tokens: list[str] = []
    issue = IAMPasswordAuth._issue

    def spy(self: IAMPasswordAuth) -> tuple[str, float]:
        token, expires = issue(self)
        tokens.append(token)
        return token, expires

    monkeypatch.setattr(IAMPasswordAuth, "_issue", spy)
    caplog.set_level(logging.DEBUG)
    args = ["--services", "4", "--days", "1", "--end-date", "2026-11-20", "--password", PASSWORD]
    faults = ["--token-ttl-s", "2", "--fault-rate", "0.2", "--retry-after-s", "0"]
    with running_simulator([*args, *faults, "--fault-kinds", "throttle,error_json,drop"]) as info:
        for key, value in simulator_env(info, database_url, auth="password").items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv(settings.MODELARTS_TOKEN, raising=False)
        monkeypatch.setenv(settings.MODELARTS_PAGE_LIMIT, "10")
        instance = DagsterInstance.ephemeral()
        resources = build_resources()
        assets = [services, service_events]
        day = simulator_days(info)[0]
        ok = materialize(assets, instance=instance, resources=resources, partition_key=day)
        # and a failing run: a wrong offset mode, whose error travels through Dagster
        monkeypatch.setenv(settings.MODELARTS_OFFSET_MODE, "record")
        failed = materialize(
            assets,
            selection=["service_events"],
            instance=instance,
            resources=build_resources(),
            partition_key=day,
            raise_on_error=False,
        )
    assert ok.success and not failed.success
    assert tokens, "IAM auth should have issued tokens"

    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, *(r.getMessage() for r in caplog.records)]
    for run in (ok, failed):
        for record in instance.all_logs(run.run_id):
            texts.append(repr(record))
        for mat in run.get_asset_materialization_events():
            texts.append(repr(mat))
    failure = next(e for e in failed.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    assert error is not None
    texts.append(error.to_string())
    resource = resources["modelarts"]
    # the resource as a run sees it (its EnvVars resolved)
    client = resource.process_config_and_initialize().build_client()
    texts += [repr(resource), str(resource), repr(client), repr(client._auth)]

    secrets = [PASSWORD, *tokens]
    leaks = [(s[:6], i) for i, t in enumerate(texts) for s in secrets if s in t]
    assert leaks == []
    assert any("IAM" in t or "obtained" in t for t in texts)  # the logs did capture the run
