"""Runs with the credentials real accounts use, end to end over HTTP: AK/SK signing, temporary
keys from the metadata service that expire mid-run, a wrong SK; and every credential mistake is
one line and exit 2 before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from dagster import DagsterInstance, materialize

from pipelines.assets.events import service_events, services
from pipelines.cli import main
from pipelines.definitions import build_resources
from pipelines.simulator.process import SimulatorInfo, pipeline_environment, running_simulator
from pipelines.source import connect
from tests.integration.conftest import (
    OneLineError,
    bare_environ,
    expected_events,
    free_port,
    simulator_days,
    simulator_env,
    stored_events,
)

pytestmark = pytest.mark.integration

HISTORY = ["--services", "6", "--days", "3", "--seed", "17", "--end-date", "2026-11-20"]
WRONG_SK = "wrong-secret-key-123456"


def _cli_env(info: SimulatorInfo, database_url: str, home: Path, auth: str) -> dict[str, str]:
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **bare_environ(),
        **simulator_env(info, database_url, auth),
        "DAGSTER_HOME": str(home),
        "MODELARTS_PAGE_LIMIT": "10",  # many pages: the run lasts a while
    }


def _run(info: SimulatorInfo, env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    days = simulator_days(info)
    command = [sys.executable, "-m", "pipelines.cli", "run", "--start", days[0], "--end", days[-1]]
    return subprocess.run(command, env=env, cwd=home, capture_output=True, text=True, timeout=600)


def _stats(info: SimulatorInfo) -> dict[str, Any]:
    return dict(requests.get(f"{info.url}/_sim/stats", timeout=10).json())


def test_a_run_signed_with_ak_sk_loads_the_exact_events(database_url: str, tmp_path: Path) -> None:
    with running_simulator(HISTORY) as info:
        done = _run(info, _cli_env(info, database_url, tmp_path, "aksk"), tmp_path)
        stats = _stats(info)
        expected = expected_events(info)
    assert done.returncode == 0, done.stderr[-2000:]
    assert stored_events(database_url) == expected and expected
    # every call was signed and accepted; IAM was never asked for a token
    assert stats["tokens_issued"] == 0 and stats["temporary_keys_issued"] == 0
    assert "401" not in stats["requests"]["events"] and stats["requests"]["events"]["200"] > 0
    assert info.secret_key not in done.stdout + done.stderr


def test_temporary_keys_that_expire_during_the_run_lose_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """Keys from the metadata endpoint live 3 s (refreshed at 80%); on top, they really die
    after 2 s, so some die in use: the refused ones are replaced, and nothing is lost."""
    lives = ["--temporary-key-ttl-s", "3", "--credential-real-life-s", "2"]
    with running_simulator([*HISTORY, *lives]) as info:
        done = _run(info, _cli_env(info, database_url, tmp_path, "metadata"), tmp_path)
        stats = _stats(info)
        expected = expected_events(info)
    assert done.returncode == 0, done.stderr[-2000:]
    assert stored_events(database_url) == expected and expected
    assert stats["temporary_keys_issued"] >= 3  # expired and renewed while the run went on
    assert stats["tokens_issued"] == 0


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_a_wrong_sk_fails_the_run_in_one_line_naming_the_source_with_nothing_loaded(
    database_url: str, tmp_path: Path
) -> None:
    """Checked with one signed request before anything starts (exit 2); a run Dagster starts
    itself (no CLI) fails its first step with the same error, and is not retried."""
    with running_simulator(HISTORY) as info:
        env = _cli_env(info, database_url, tmp_path, "aksk")
        env["HUAWEICLOUD_SDK_SK"] = WRONG_SK
        done = _run(info, env, tmp_path)
        os.environ.update({k: v for k, v in env.items() if k.startswith(("MODELARTS_", "HUAW"))})
        os.environ["DATABASE_URL"] = database_url
        try:
            result = materialize(
                [services, service_events],
                selection=["service_events"],
                partition_key=simulator_days(info)[0],
                instance=DagsterInstance.ephemeral(),
                resources=build_resources(),
                raise_on_error=False,
            )
        finally:
            for var in env:
                if var.startswith(("MODELARTS_", "HUAW")):
                    os.environ.pop(var, None)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing started: no simulator, no warehouse
    assert done.stderr == (
        "modelarts-etl run: error: list services: the API refused AK/SK SIMU… from "
        "HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK: HTTP 401 APIGW.0301: Incorrect IAM "
        "authentication information: verify aksk signature fail\n"
    )
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1  # failed once: a refused credential is not retried
    error = failures[0].step_failure_data.error
    assert error is not None
    assert "list services: the API refused AK/SK SIMU… from HUAWEICLOUD_SDK_AK" in error.message
    assert WRONG_SK not in error.to_string()
    assert not [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select count(*) from service_events").fetchone()
    assert row == (0,)


CLOSED = free_port()
REAL = "https://modelarts.cn-north-4.myhuaweicloud.com"
KEYS = {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "sk-secret-value"}

CONFIG_ERRORS = [
    # (environment, argv, the line says)
    ({"MODELARTS_ENDPOINT": REAL, **KEYS}, ["run"],
     f"no project id for {REAL}: set MODELARTS_PROJECT_ID (or HUAWEICLOUD_SDK_PROJECT_ID"),
    ({"HUAWEICLOUD_REGION": "cn-north-4", **KEYS}, ["backfill", "--start", "2026-11-18",
     "--end", "2026-11-19"], f"no project id for {REAL}: set MODELARTS_PROJECT_ID"),
    ({"MODELARTS_ENDPOINT": REAL, "MODELARTS_PROJECT_ID": "p", "HUAWEICLOUD_SDK_AK": "AK"},
     ["run"], "HUAWEICLOUD_SDK_AK is set but HUAWEICLOUD_SDK_SK is not"),
    ({"MODELARTS_ENDPOINT": REAL, "MODELARTS_PROJECT_ID": "p",
      "HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/nonexistent/credentials"}, ["rerun", "2026-11-19"],
     "cannot read the credentials file /nonexistent/credentials "
     "(HUAWEICLOUD_SDK_CREDENTIALS_FILE): No such file or directory"),
    ({"MODELARTS_ENDPOINT": REAL, "MODELARTS_PROJECT_ID": "p",
      "HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/"}, ["run"],
     "cannot read the credentials file / (HUAWEICLOUD_SDK_CREDENTIALS_FILE): Is a directory"),
    ({"MODELARTS_ENDPOINT": REAL, "MODELARTS_PROJECT_ID": "p",
      "HUAWEICLOUD_METADATA_ENDPOINT": f"http://127.0.0.1:{CLOSED}"}, ["run"],
     f"the ECS metadata service at http://127.0.0.1:{CLOSED} (HUAWEICLOUD_METADATA_ENDPOINT) "
     "did not answer with credentials: Connection refused"),
    ({"MODELARTS_ENDPOINT": REAL, "MODELARTS_PROJECT_ID": "p", "HUAWEICLOUD_USERNAME": "u"},
     ["verify", "2026-11-19"], "IAM password auth is incomplete: set HUAWEICLOUD_IAM_ENDPOINT"),
    # nothing at all: the metadata service's default address is asked (here a closed port)
    ({"MODELARTS_ENDPOINT": REAL, "MODELARTS_PROJECT_ID": "p"}, ["run"],
     "no usable credentials: none of HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK, a credentials file "
     "(HUAWEICLOUD_SDK_CREDENTIALS_FILE, default ~/.huaweicloud/credentials), "
     "HUAWEICLOUD_USERNAME/HUAWEICLOUD_PASSWORD or MODELARTS_TOKEN is set, and the ECS metadata "
     f"service at http://127.0.0.1:{CLOSED} did not answer: Connection refused"),
    # a region the vendor's table does not know: the known ids and the SDK's override
    ({"HUAWEICLOUD_REGION": "xx-moon-1", **KEYS}, ["run"],
     "unknown region 'xx-moon-1' (HUAWEICLOUD_REGION); known: af-north-1,af-south-1,"),
    ({"HUAWEICLOUD_REGION": "xx-moon-1", **KEYS}, ["status"],
     "tr-west-1; else set HUAWEICLOUD_SDK_REGION_MODELARTS_XX_MOON_1 "
     "(or HUAWEICLOUD_SDK_REGIONS_FILE)"),
]  # fmt: skip


@pytest.fixture
def no_credentials(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # never the real link-local address from a test
    monkeypatch.setattr(connect, "DEFAULT_METADATA_ENDPOINT", f"http://127.0.0.1:{CLOSED}")


@pytest.mark.parametrize(("env", "argv", "says"), CONFIG_ERRORS)
@pytest.mark.usefixtures("no_credentials")
def test_a_credential_mistake_is_one_line_and_exit_2_before_anything_starts(
    env: dict[str, str], argv: list[str], says: str, one_line_error: OneLineError
) -> None:
    err = one_line_error(env, argv, 2)
    assert says in err, err
    assert "sk-secret-value" not in err


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("ap-southeast-3", "https://modelarts.ap-southeast-3.myhuaweicloud.com"),
        # the vendor's exception: Hong Kong's ModelArts is on .myhuaweicloud.cn
        ("ap-southeast-1", "https://modelarts.ap-southeast-1.myhuaweicloud.cn"),
    ],
)
def test_status_shows_the_endpoints_and_credential_source_never_the_secret(
    region: str,
    endpoint: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HUAWEICLOUD_REGION", region)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "0123456789abcdef")
    for var, value in {"HUAWEICLOUD_SDK_AK": "HPUAEXAMPLE", "HUAWEICLOUD_SDK_SK": "sk-secret-value",
                       "HUAWEICLOUD_SDK_SECURITY_TOKEN": "token-secret-value"}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    assert main(["migrate"]) == 0  # status only reads: it refuses a warehouse with migrations due
    assert main(["status", "--start", "2026-11-18", "--end", "2026-11-19"]) == 0
    out = capsys.readouterr().out
    assert (
        f"api: ModelArts {endpoint} (region {region}), project 0123456789abcdef, "
        "credentials: temporary AK/SK HPUA… from HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK"
    ) in out
    assert "sk-secret-value" not in out and "token-secret-value" not in out


def test_the_simulator_environment_names_each_source() -> None:
    info = SimulatorInfo(
        "http://127.0.0.1:1", "p", "u", "pw", "d", "r", "AK", "SK", "2026-11-17", "2026-11-20", 1, 1
    )
    assert pipeline_environment(info)["HUAWEICLOUD_SDK_SK"] == "SK"
    assert pipeline_environment(info, "metadata")["HUAWEICLOUD_METADATA_ENDPOINT"] == info.url
    password = pipeline_environment(info, "password")
    assert password["HUAWEICLOUD_PASSWORD"] == "pw" and password["HUAWEICLOUD_SDK_AK"] == ""
