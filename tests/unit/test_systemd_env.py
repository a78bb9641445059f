"""deploy/modelarts-etl.env and deploy/systemd/: the env file works as systemd reads it, and a
value that carries an inline comment is refused when the settings load, on one line.

`environment_file` reads a file as systemd's `EnvironmentFile=` does (systemd 252,
`parse_env_file`), for the subset of its rules an env file of this project may use:
- a line whose first non-blank character is `#` or `;` is a comment; blank lines are skipped;
- `KEY=VALUE`: blanks around the key and before the value are dropped, and trailing blanks of an
  unquoted value; everything else after `=` is the value, **`#` and blanks included** (there are
  no inline comments);
- a value wholly in single or double quotes loses its quotes (the shipped file uses none);
- a `\\` at the end of a line continues the value on the next line (the shipped file uses none).
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
from importlib.metadata import entry_points

import pytest

from pipelines import settings
from pipelines.settings import ConfigError
from tests import REPO

ENV_FILE = REPO / "deploy" / "modelarts-etl.env"
UNITS = REPO / "deploy" / "systemd"
GUIDE = REPO / "deploy" / "README.md"
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def environment_file(text: str) -> dict[str, str]:
    """The variables systemd's EnvironmentFile= sets from `text` (rules: module docstring)."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        while stripped.endswith("\\"):  # continued: the next line's text, as it is
            stripped = stripped[:-1] + next(lines, "")
        key, equals, value = stripped.partition("=")
        key, value = key.strip(), value.strip()
        assert equals and KEY.fullmatch(key), f"not an assignment: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=b\n", {"A": "b"}),
        ("  # comment\n; also one\n\nA = b  \n", {"A": "b"}),
        ("A=cn-north-4     # gives the endpoints\n", {"A": "cn-north-4     # gives the endpoints"}),
        ("A=x#y\n", {"A": "x#y"}),
        ("A='quoted # kept'\n", {"A": "quoted # kept"}),
        ("A=one \\\ntwo\n", {"A": "one two"}),
    ],
)
def test_the_parser_reads_as_systemd_does(text: str, expected: dict[str, str]) -> None:
    assert environment_file(text) == expected


def _shipped() -> dict[str, str]:
    return environment_file(ENV_FILE.read_text(encoding="utf-8"))


def _load(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """`values` as the process's environment, no other setting of the pipeline's."""
    for var in list(os.environ):
        if var.startswith(("MODELARTS_", "HUAWEICLOUD_", "PIPELINES_", "DAGSTER_")) or var in (
            "DATABASE_URL",
            "ANALYTICS_DATABASE_URL",
        ):
            monkeypatch.delenv(var)
    for var, value in values.items():
        monkeypatch.setenv(var, value)


def test_the_shipped_env_file_sets_the_guides_variables_and_every_value_validates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = _shipped()
    assert {
        "DAGSTER_HOME",
        "DAGSTER_PG_URL",
        settings.DATABASE_URL,
        settings.ANALYTICS_DATABASE_URL,
        settings.DATA_DIR,
        settings.IAM_REGION,
        settings.MODELARTS_PROJECT_ID,
        settings.SDK_AK,
        settings.SDK_SK,
        settings.PARTITIONS_START,
    } <= set(values)
    for var, value in values.items():
        assert "#" not in value and value == value.strip(), f"{var}={value!r}"
        assert not (value[:1] in "'\"" and value[-1:] == value[:1]), f"{var} is quoted"
    assert values[settings.IAM_REGION] == "cn-north-4"
    _load(monkeypatch, values)
    settings.validate()  # raises on any value it refuses


@pytest.mark.parametrize(
    ("var", "comment", "shown"),
    [
        (settings.IAM_REGION, "          # gives the ModelArts and IAM endpoints", True),
        (settings.SDK_AK, "                # or the SDK's credentials file", False),
        (settings.SDK_SK, "                # password: see the README", False),
        (settings.DATABASE_URL, "  # the loader", False),
        (settings.MODELARTS_WORKERS, "  # threads per step", True),
    ],
)
def test_a_value_with_a_trailing_comment_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, var: str, comment: str, shown: bool
) -> None:
    text = ENV_FILE.read_text(encoding="utf-8")
    if var not in _shipped():
        text += f"{var}=4\n"
    commented = re.sub(rf"^({var}=.*)$", rf"\g<1>{comment}", text, count=1, flags=re.MULTILINE)
    values = environment_file(commented)
    assert values[var].endswith(comment.strip())  # systemd keeps it: the pipeline must not
    _load(monkeypatch, values)
    with pytest.raises(ConfigError) as refused:
        settings.validate()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{var} holds an inline comment")
    assert "put comments on lines of their own" in message
    original = values[var][: -len(comment)]
    assert (original in message) is shown  # a key or a database URL is never quoted


def test_a_space_inside_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _load(monkeypatch, {**_shipped(), settings.SDK_AK: "AKIDEXAMPLE trailing"})
    with pytest.raises(ConfigError, match=rf"^{settings.SDK_AK} must not contain spaces"):
        settings.validate()


def test_a_cron_expression_and_a_password_keep_their_spaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _load(
        monkeypatch,
        {
            **_shipped(),
            settings.NIGHTLY_CRON: "30 0 * * *",
            settings.IAM_PASSWORD: "pass word # with a hash",
        },
    )
    settings.validate()


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((UNITS / name).read_text(encoding="utf-8"))
    return unit


@pytest.mark.parametrize(
    ("name", "program", "args"),
    [
        (
            "modelarts-etl-webserver.service",
            "dagster-webserver",
            ["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3000"],
        ),
        ("modelarts-etl-daemon.service", "dagster-daemon", ["run", "-w", "workspace.yaml"]),
    ],
)
def test_each_unit_runs_an_installed_program_with_the_guides_env_file(
    name: str, program: str, args: list[str]
) -> None:
    service = _unit(name)["Service"]
    guide = GUIDE.read_text(encoding="utf-8")
    assert service["EnvironmentFile"] == "/etc/modelarts-etl.env"
    assert "deploy/modelarts-etl.env /etc/modelarts-etl.env" in guide  # the guide installs it
    assert f"deploy/systemd/{name}" in guide or "deploy/systemd/*.service" in guide
    command = shlex.split(service["ExecStart"])
    venv = "/opt/modelarts-etl/venv/bin/"
    assert command[0] == venv + program and command[1:] == args
    assert f"python3.11 -m venv {venv.removesuffix('/bin/')}" in guide
    # the program is a console script of an installed distribution (the unit's venv has it)
    assert program in {script.name for script in entry_points(group="console_scripts")}
    # workspace.yaml, relative to WorkingDirectory, is where the guide copies it
    assert f"cp workspace.yaml {service['WorkingDirectory']}/workspace.yaml" in guide
    assert service["Restart"] == "on-failure"
    # DAGSTER_HOME and the data directory of the env file are writable under ProtectSystem=strict
    env = _shipped()
    assert env["DAGSTER_HOME"] in service["ReadWritePaths"].split()
    assert env[settings.DATA_DIR] == "/var/lib/" + service["StateDirectory"]
    assert _unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_the_guide_shows_no_value_with_an_inline_comment() -> None:
    """An env file block in the guide is copied as often as the file: same rule."""
    guide = GUIDE.read_text(encoding="utf-8")
    assignments = re.findall(r"^[A-Z][A-Z0-9_]*=.*$", guide, re.MULTILINE)
    assert assignments
    commented = [line for line in assignments if re.search(r"\s#", line)]
    assert not commented, commented

