"""Where credentials come from (the SDK's order and names), the credentials file, region
endpoints, and the shared renewing cache: compare-and-invalidate and early refresh."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pipelines.settings import ConfigError
from pipelines.source.connect import (
    ENV_KEYS,
    FILE_KEYS,
    METADATA,
    PASSWORD,
    TOKEN,
    ConnectionSettings,
    resolve_connection,
)
from pipelines.source.credentials import Renewing

NO_FILE = "/nonexistent/credentials"  # an explicit file must exist: used only where it is read


def _file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "credentials"
    path.write_text(body, encoding="utf-8")
    return str(path)


PASSWORD_SETTINGS = {
    "iam_endpoint": "https://iam.example",
    "username": "u",
    "password": "p",
    "domain": "d",
    "region": "cn-north-4",
}


@pytest.mark.parametrize(
    ("given", "kind"),
    [
        # environment AK/SK beats everything
        (
            {"access_key": "AK1", "secret_key": "SK1", "metadata_endpoint": "http://m"}
            | PASSWORD_SETTINGS,
            ENV_KEYS,
        ),
        ({"metadata_endpoint": "http://m", "token": "t"} | PASSWORD_SETTINGS, METADATA),
        ({"token": "t"} | PASSWORD_SETTINGS, PASSWORD),
        ({"token": "t"}, TOKEN),
        ({}, METADATA),  # nothing configured: the metadata service, as the SDK does on ECS
    ],
)
def test_the_first_source_found_wins(
    given: dict[str, str], kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.huaweicloud/credentials
    connection = resolve_connection(
        ConnectionSettings(endpoint="https://modelarts.example", project_id="p", **given)
    )
    assert connection.credentials.kind == kind
    assert "SK1" not in connection.source


def test_the_credentials_file_comes_after_the_environment_and_gives_a_project_id(
    tmp_path: Path,
) -> None:
    path = _file(
        tmp_path,
        "[basic]\nak = FILEAK123\nsk = file-secret\nproject_id = 0123abcd\nsecurity_token = tok\n",
    )
    from_file = resolve_connection(
        ConnectionSettings(endpoint="https://m.example", credentials_file=path, token="t")
    )
    assert from_file.credentials.kind == FILE_KEYS
    assert from_file.project_id == "0123abcd"
    assert from_file.source == f"temporary AK/SK FILE… from the credentials file {path}"
    key = from_file.credentials.key
    assert key is not None and key.sk.reveal() == "file-secret"
    assert key.security_token is not None and key.security_token.reveal() == "tok"
    from_env = resolve_connection(
        ConnectionSettings(
            endpoint="https://m.example",
            credentials_file=path,
            access_key="ENVAK",
            secret_key="s",
            sdk_project_id="sdkproject",
        )
    )
    assert from_env.credentials.kind == ENV_KEYS and from_env.project_id == "sdkproject"


def test_the_default_credentials_file_is_read_from_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".huaweicloud").mkdir()
    (tmp_path / ".huaweicloud" / "credentials").write_text("[basic]\nak = HOMEAK\nsk = s\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    connection = resolve_connection(ConnectionSettings(endpoint="https://m", project_id="p"))
    assert connection.credentials.kind == FILE_KEYS
    assert str(tmp_path / ".huaweicloud" / "credentials") in connection.source


def test_a_region_alone_gives_both_endpoints() -> None:
    connection = resolve_connection(
        ConnectionSettings(region="ap-southeast-3", project_id="p", username="u", password="pw",
                           domain="d")
    )  # fmt: skip
    assert connection.endpoint == "https://modelarts.ap-southeast-3.myhuaweicloud.com"
    iam = connection.credentials.iam
    assert iam is not None and iam.iam_endpoint == "https://iam.ap-southeast-3.myhuaweicloud.com"
    explicit = resolve_connection(
        ConnectionSettings(region="ap-southeast-3", endpoint="https://own.example",
                           project_id="p", token="t")
    )  # fmt: skip
    assert explicit.endpoint == "https://own.example"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"project_id": "p"}, "MODELARTS_ENDPOINT or HUAWEICLOUD_REGION must be set"),
        (
            {"endpoint": "https://modelarts.cn-north-4.myhuaweicloud.com", "token": "t"},
            "no project id for https://modelarts.cn-north-4.myhuaweicloud.com: set "
            "MODELARTS_PROJECT_ID",
        ),
        (
            {"endpoint": "https://m", "project_id": "p", "access_key": "AK"},
            "HUAWEICLOUD_SDK_AK is set but HUAWEICLOUD_SDK_SK is not",
        ),
        (
            {"endpoint": "https://m", "project_id": "p", "secret_key": "sk-value"},
            "HUAWEICLOUD_SDK_SK is set but HUAWEICLOUD_SDK_AK is not",
        ),
        (
            {"endpoint": "https://m", "project_id": "p", "credentials_file": NO_FILE},
            f"cannot read the credentials file {NO_FILE} (HUAWEICLOUD_SDK_CREDENTIALS_FILE): "
            "No such file or directory",
        ),
        (
            {"endpoint": "https://m", "project_id": "p", "username": "u"},
            "IAM password auth is incomplete: set HUAWEICLOUD_IAM_ENDPOINT or "
            "HUAWEICLOUD_REGION, HUAWEICLOUD_PASSWORD, HUAWEICLOUD_DOMAIN, HUAWEICLOUD_REGION",
        ),
    ],
)
def test_a_setting_that_gives_no_connection_is_one_config_error(
    given: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        resolve_connection(ConnectionSettings(**given))
    assert str(raised.value) == says or str(raised.value).startswith(says), str(raised.value)
    assert "sk-value" not in str(raised.value)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[global]\nak = A\nsk = S\n", "has no [basic] section"),
        ("[basic]\nak = A\n", "has no sk in section [basic]"),
        ("[basic]\nsk = very-secret\n", "has no ak in section [basic]"),
        ("ak = A\n", "is not an INI file: MissingSectionHeaderError"),
    ],
)
def test_a_broken_credentials_file_is_named_never_quoted(
    body: str, says: str, tmp_path: Path
) -> None:
    path = _file(tmp_path, body)
    with pytest.raises(ConfigError) as raised:
        resolve_connection(ConnectionSettings(endpoint="https://m", credentials_file=path))
    assert f"the credentials file {path} (HUAWEICLOUD_SDK_CREDENTIALS_FILE) {says}" in str(
        raised.value
    )
    assert "very-secret" not in str(raised.value)


class _Issuer:
    """Hands out numbered credentials that claim to live `life_s`."""

    def __init__(self, life_s: float):
        self.life_s = life_s
        self.calls = 0

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        return f"credential-{self.calls}", time.time() + self.life_s


def test_a_refusal_drops_only_the_credential_that_was_sent() -> None:
    issuer = _Issuer(3600)
    cache: Renewing[str] = Renewing(issuer, "token", margin_s=300)
    first = cache.get()
    cache.refused(first)
    second = cache.get()
    assert (first, second, issuer.calls) == ("credential-1", "credential-2", 2)
    # a worker that sent the first one learns of its refusal late: the second one stays
    cache.refused(first)
    assert cache.get() == "credential-2" and issuer.calls == 2


def test_threads_refused_together_fetch_one_new_credential() -> None:
    issuer = _Issuer(3600)
    cache: Renewing[str] = Renewing(issuer, "token", margin_s=300)
    sent = cache.get()
    barrier = threading.Barrier(8)
    got: list[str] = []

    def worker() -> None:
        barrier.wait()
        cache.refused(sent)
        got.append(cache.get())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert issuer.calls == 2 and set(got) == {"credential-2"}


def test_a_life_shorter_than_advertised_is_learned_and_refreshed_before() -> None:
    issuer = _Issuer(3600)  # claims an hour
    cache: Renewing[str] = Renewing(issuer, "token", margin_s=300)
    first = cache.get()
    cache._issued_at -= 2.0  # it has lived 2 s when the API refuses it
    cache.refused(first)
    assert cache.observed_life_s is not None and 2.0 <= cache.observed_life_s < 2.5
    cache.get()
    assert issuer.calls == 2
    cache._refresh_at -= 0  # unchanged: refreshed at 3/4 of the life seen, not after an hour
    assert cache._refresh_at - cache._issued_at == pytest.approx(0.75 * cache.observed_life_s)
    # a refusal right after issue is not about expiry: nothing learned from it
    fresh: Renewing[str] = Renewing(_Issuer(3600), "token", margin_s=300)
    fresh.refused(fresh.get())
    assert fresh.observed_life_s is None


def test_short_lived_credentials_are_refreshed_after_80_percent_of_their_life() -> None:
    cache: Renewing[str] = Renewing(_Issuer(10), "keys", margin_s=40 * 60)
    cache.get()
    assert cache._refresh_at - cache._issued_at == pytest.approx(8.0, abs=0.05)
