"""Every SQL example of README.md runs on a warehouse loaded from the simulator through Dagster,
marts built, and returns rows: a dashboard query copied from the README must work as printed."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import psycopg
import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from pipelines import settings
from pipelines.definitions import build_resources
from pipelines.simulator.history import HistoryConfig, generate_history
from pipelines.simulator.process import running_simulator
from pipelines.simulator.records import event_records
from pipelines.warehouse.database import create_warehouse_engine
from pipelines.warehouse.marts import rebuild_marts
from pipelines.warehouse.sql_files import read_sql
from tests import REPO
from tests.integration.conftest import simulator_days, simulator_env
from tests.integration.test_deployment_assets import ASSETS, MART_KEYS
from tests.v2records import store_records, utc_day

pytestmark = pytest.mark.integration

README = REPO / "README.md"
SQL_LANGUAGES = {"sql", "postgresql", "postgres", "pgsql", "psql"}
# An opening or closing fence: up to 3 spaces, then 3+ backticks or tildes, then the info string.
FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
# The README's history: the simulator's 3 days before today (UTC), so the examples'
# `current_date - N` windows hold rows; seed 7 gives failures, phases and unknown texts.
SIM_ARGS = ["--services", "12", "--days", "3", "--seed", "7"]
# The README's queries run as printed in psql (the client BI users paste them into). CI installs
# it (.ci/run: postgresql-client) where it is missing.
PSQL = shutil.which("psql")
PSQL_MISSING = "psql is not installed (apt-get install postgresql-client)"


@dataclass(frozen=True)
class Example:
    line: int  # of the statement's first line in README.md
    sql: str


def fenced_sql_blocks(markdown: str) -> list[tuple[int, str]]:
    """(first line number, body) of every fenced code block whose language is SQL."""
    blocks: list[tuple[int, str]] = []
    fence, language, start = "", "", 0
    body: list[str] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        match = FENCE.match(line)
        if not fence:
            if match:
                fence, body, start = match["fence"], [], number + 1
                language = (match["info"].split() or [""])[0].lower()
            continue
        if match is None or match["info"]:
            body.append(line)
            continue
        if match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence):
            if language in SQL_LANGUAGES:
                blocks.append((start, "\n".join(body)))
            fence = ""
        else:
            body.append(line)
    return blocks


def split_statements(block: str) -> list[tuple[int, str]]:
    """(line offset in the block, text) of each statement: split at `;` outside quotes and
    comments; statements that are empty or only comments are dropped."""
    bounds: list[tuple[int, int]] = []
    start, index, quote = 0, 0, ""
    while index < len(block):
        char = block[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif block.startswith("--", index):
            newline = block.find("\n", index)
            index = len(block) if newline < 0 else newline
            continue
        elif char == ";":
            bounds.append((start, index))
            start = index + 1
        index += 1
    bounds.append((start, len(block)))
    statements = []
    for begin, end in bounds:
        lines = block[begin:end].split("\n")
        code = [i for i, line in enumerate(lines) if line.strip() and not _is_comment(line)]
        if code:
            text_lines = lines[code[0] : code[-1] + 1]
            statement = "\n".join(line for line in text_lines if not _is_comment(line))
            statements.append((block.count("\n", 0, begin) + code[0], statement.strip()))
    return statements


def _is_comment(line: str) -> bool:
    return line.strip().startswith("--")


def readme_examples() -> list[Example]:
    return [
        Example(line=start + offset, sql=statement)
        for start, block in fenced_sql_blocks(README.read_text(encoding="utf-8"))
        for offset, statement in split_statements(block)
    ]


def psql_variables(conn: Connection) -> dict[str, str]:
    """Values for the examples' psql variables (`:'service_id'`): ones that select rows."""
    service_id = conn.execute(
        text(
            "select service_id from analytics.deployment_outcomes_daily"
            " order by attempts desc, service_id limit 1"
        )
    ).scalar_one()
    return {"service_id": service_id}


def run_in_psql(url: str, statement: str, variables: dict[str, str]) -> tuple[int, str]:
    """`statement` as printed, through psql (its `:'name'` variables set), in a transaction
    rolled back: (rows it returned or changed, psql's error output, empty if none)."""
    assert PSQL is not None
    script = (
        "\\set ON_ERROR_STOP on\n"
        "begin;\n"
        f"{statement};\n"
        "\\echo rows_of_the_example=:ROW_COUNT\n"
        "rollback;\n"
    )
    options = [option for name, value in variables.items() for option in ("-v", f"{name}={value}")]
    done = subprocess.run(
        [PSQL, "-X", "-q", "-A", "-t", "-d", url, *options, "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
    )
    counted = re.search(r"^rows_of_the_example=(\d+)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or counted is None:
        return 0, (done.stderr or done.stdout).strip() or f"psql exited {done.returncode}"
    return int(counted[1]), ""


def bi_login(database_url: str) -> str:
    """A login in analytics_reader (created by the grant script, run as the owner), as a BI
    tool connects: the README's select examples are run as it."""
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(read_sql("grants/grant_analytics_reader.sql"))
        owner.execute(
            "do $$ begin if not exists (select from pg_roles where rolname = 'readme_bi') then"
            " create role readme_bi login in role analytics_reader; end if; end $$"
        )
    return make_url(database_url).set(username="readme_bi").render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("```sql\nselect 1;\n```\n", [(2, "select 1")]),
        ("```SQL title\nselect 1;\nselect 2\n```", [(2, "select 1"), (3, "select 2")]),
        ("~~~~postgresql\nselect ';' as a; -- x; y\n~~~~\n", [(2, "select ';' as a")]),
        ("````sql\n```\nselect 1\n````", [(2, "```\nselect 1")]),  # a shorter fence is text
        ("```bash\npsql -c 'select 1;'\n```\n```\nselect 2;\n```", []),
        ("  ```sql\n  select 1;\n  ```", [(2, "select 1")]),
    ],
)
def test_the_extraction_finds_exactly_the_sql_statements(
    markdown: str, expected: list[tuple[int, str]]
) -> None:
    found = [
        (start + offset, statement)
        for start, block in fenced_sql_blocks(markdown)
        for offset, statement in split_statements(block)
    ]
    assert found == expected


def test_the_readme_has_sql_examples() -> None:
    examples = readme_examples()
    assert examples, "no ```sql block found in README.md: the extraction is broken"
    assert any(e.sql.lower().startswith("select") for e in examples)


@pytest.mark.usefixtures("engine")  # migrated: a run never migrates
def test_every_readme_query_runs_on_a_loaded_warehouse(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if PSQL is None:
        pytest.skip(PSQL_MISSING)
    examples = readme_examples()
    assert examples
    with running_simulator(SIM_ARGS) as info:
        monkeypatch.delenv(settings.MODELARTS_TOKEN, raising=False)
        for key, value in simulator_env(info, database_url).items():
            monkeypatch.setenv(key, value)
        instance, resources = DagsterInstance.ephemeral(), build_resources()
        assert materialize(
            ASSETS, selection=["services"], instance=instance, resources=resources
        ).success
        for day in simulator_days(info):
            for selection in (["service_events"], MART_KEYS):
                assert materialize(
                    ASSETS,
                    selection=selection,
                    partition_key=day,
                    instance=instance,
                    resources=resources,
                ).success

    engine = create_warehouse_engine(database_url)
    # the same history's services once more as new-version (v2) services: the queries run over
    # both generations, as a migrating project's would
    history = generate_history(HistoryConfig(services=12, days=3, seed=7))
    store_records(
        engine,
        [
            record
            for service_id, events in history.events_by_service.items()
            for record in event_records(f"v2-{service_id}", events)
        ],
    )
    rebuild_marts(engine, [utc_day(history.end_ms - 1)])
    try:
        with engine.connect() as conn:
            generations = conn.execute(
                text("select distinct generation from analytics.deployment_outcomes_daily")
            ).scalars()
            assert set(generations) == {"v1", "v2"}
            variables = psql_variables(conn)
    finally:
        engine.dispose()
    reader, failures = bi_login(database_url), []
    for example in examples:
        # a select as the BI login; the insert example (a cause rule) as the owner, rolled back
        selects = example.sql.lower().startswith(("select", "with"))
        count, error = run_in_psql(reader if selects else database_url, example.sql, variables)
        if error:
            failures.append(f"README.md:{example.line}: {error}\n{example.sql}")
        elif count < 1:
            failures.append(f"README.md:{example.line}: no rows\n{example.sql}")
    assert not failures, "\n\n".join(failures)


def test_psql_needs_the_quoted_form_of_a_text_variable(database_url: str) -> None:
    """Why the README writes `:'service_id'`: psql pastes `:service_id` as it is, and a uuid
    pasted bare is not SQL; the runner reports that, it never passes it silently."""
    if PSQL is None:
        pytest.skip(PSQL_MISSING)
    service = {"service_id": "3f1c2a9e-0b7d-4c55-9e21-7a8b6c5d4e3f"}
    count, error = run_in_psql(database_url, "select :service_id as id", service)
    assert count == 0 and "ERROR" in error and "3f1c2a9e-0b7d" in error
    count, error = run_in_psql(database_url, "select :'service_id' as id", service)
    assert (count, error) == (1, "")
