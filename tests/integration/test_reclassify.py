"""A changed rules file through the operator commands: `migrate` loads it as a new version,
`reclassify` rebuilds a range of days with it (idempotent, a line per day), `status` shows the
version that built each day."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.simulator.process import SimulatorInfo
from pipelines.warehouse import rules
from pipelines.warehouse.database import create_warehouse_engine
from tests.integration.conftest import simulator_days
from tests.integration.test_deployment_marts import snapshot
from tests.integration.test_operator_cli import _rows, operator_env  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator_env")]

# the one text of the simulator's histories that no shipped rule knows
HOOK_RULE = (
    "ops.hook\treference\t30\t\tcustom hook executed: {*}\tother\t\t\tcustom hook executed: x\n"
)


def test_a_rules_change_is_migrated_reclassified_and_shown(
    simulator: SimulatorInfo,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    days = simulator_days(simulator)
    first, last = days[0], days[-1]
    assert main(["run", "--start", first, "--end", last]) == 0
    capsys.readouterr()
    assert main(["status", "--start", first, "--end", last]) == 0
    before = capsys.readouterr().out
    assert all(_rows(before, d)[0].split()[-2] == "v1" for d in days)

    changed = tmp_path / "event_text_rules.tsv"
    changed.write_text(rules.rules_path().read_text(encoding="utf-8") + HOOK_RULE, "utf-8")
    monkeypatch.setattr(rules, "rules_path", lambda: changed)
    assert main(["migrate"]) == 0
    assert "event text rules: version 2 (" in capsys.readouterr().out

    assert main(["reclassify", "--start", first, "--end", last]) == 0
    out = capsys.readouterr().out
    lines = [_rows(out, d)[0].split() for d in days]
    assert [line[1] for line in lines] == ["v2"] * len(days)  # day, rules, events, unknown, ...
    assert all(int(line[3]) == 0 and line[4] == "100.00%" for line in lines)
    assert f"reclassified {len(days)} days ({first}..{last}) with rule version v2" in out

    engine = create_warehouse_engine(database_url)
    try:
        marts = snapshot(engine)
        assert marts["unclassified_event_texts_daily"] == set()
        assert main(["reclassify", "--start", first, "--end", last]) == 0  # again: no change
        assert snapshot(engine) == marts
    finally:
        engine.dispose()
    capsys.readouterr()

    assert main(["status", "--start", first, "--end", last]) == 0
    after = capsys.readouterr().out
    assert all(_rows(after, d)[0].split()[-2:] == ["v2", "100.00%"] for d in days)

    assert main(["reclassify", "--start", last, "--end", first]) == 2
    assert "is before --start" in capsys.readouterr().err


def test_a_broken_rules_file_stops_migrate_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "event_text_rules.tsv"
    text = rules.rules_path().read_text(encoding="utf-8")
    broken.write_text(text + "bad.rule\tconsole\t10\t\tx\tbegins\t\t\tx\n", encoding="utf-8")
    monkeypatch.setattr(rules, "rules_path", lambda: broken)
    assert main(["migrate"]) == 1
    error = capsys.readouterr().err
    line = len(text.splitlines()) + 1
    assert f"event_text_rules.tsv:{line}: role 'begins' is not one of" in error
    assert error.count("\n") == 1
