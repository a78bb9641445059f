"""The README's `dagster` example exports the simulator's credentials by value: they must be the
simulator's defaults, and name every variable a run of the dagster CLI needs."""

from __future__ import annotations

import re

from pipelines import settings
from pipelines.simulator.config import SimulatorConfig
from tests import REPO

README = REPO / "README.md"
START = ".venv/bin/modelarts-simulator --port "


def _simulator_block() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(START)
    return text[start : text.index("```", start)]


def test_the_exported_credentials_are_the_simulators_defaults() -> None:
    block = _simulator_block()
    port = re.match(r"\d+", block[len(START) :])
    assert port is not None
    exported = dict(re.findall(r"\b([A-Z_]+)=(\S+)", block))
    defaults = SimulatorConfig()
    url = f"http://127.0.0.1:{port.group()}"
    assert exported == {
        settings.MODELARTS_ENDPOINT: url,
        settings.MODELARTS_PROJECT_ID: defaults.project_id,
        settings.SDK_AK: defaults.access_key,
        settings.SDK_SK: defaults.secret_key,
        settings.EMBEDDED: "1",
        "DAGSTER_HOME": "$PWD/.data/dagster_home",
    }
