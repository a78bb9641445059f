"""The event text rules (sql/rules/event_text_rules.tsv) as the mart SQL applies them: every rule's
example, captures, odd spacing, 1 MB texts, rule versions, and the boundary index they rely on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from pipelines.source.models import ServiceEvent
from pipelines.warehouse.loader import WindowLoad
from pipelines.warehouse.marts import day_parameters, pass_parameters, rebuild_marts
from pipelines.warehouse.rules import parse_rules, rules_path, sync_event_text_rules
from pipelines.warehouse.sql_files import read_sql
from pipelines.warehouse.transactions import pooled_connection, transaction
from pipelines.windows import TimeWindow
from tests import REPO
from tests.integration.conftest import add_events
from tests.queries import one, rows, scalar

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_795_046_400_000  # 2026-11-19T00:00:00Z
WINDOW = TimeWindow(T0, T0 + DAY)
WINDOW_DAY = day_parameters(WINDOW)["day"]
RULES = parse_rules(rules_path().read_text(encoding="utf-8"))
TEXT_RULES = [r for r in RULES if r.role != "cause"]
CAUSE_RULES = [r for r in RULES if r.role == "cause"]
BOUNDARY_ROLES = ("start", "success", "failure")
MB = 1 << 20


def load(engine: Engine, texts: list[str], event_type: str = "normal") -> None:
    """One event per text, each of its own service, a second apart."""
    with WindowLoad(engine, WINDOW) as window_load:
        add_events(
            window_load,
            [
                ServiceEvent(f"svc-{i:04d}", T0 + 1000 * (i + 1), event_type, t)
                for i, t in enumerate(texts)
            ],
        )
        window_load.commit()


def staged_events(engine: Engine) -> list[dict[str, Any]]:
    """The day's events as the rebuild classifies them (the steps of a one-day pass up to the
    event stage, in a transaction rolled back afterwards): rule, kind, phase, model, reason per
    event."""
    with pooled_connection(engine) as conn:
        cur = psycopg.ClientCursor(conn)
        day = day_parameters(WINDOW)["day"]
        params = pass_parameters(day, day, [day])
        for step in (
            "stage_event_text_rules",
            "stage_mart_queue",
            "stage_mart_services",
            "stage_mart_scope",
            "stage_event_records",
            "stage_deployment_events",
        ):
            cur.execute(read_sql(f"marts/{step}.sql"), params)
        cur.execute(
            "select service_id, rule_key, kind, phase, model, reason, cause_category"
            " from deployment_event_stage order by service_id"
        )
        names = [c.name for c in cur.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        conn.rollback()
        return rows


def classify(engine: Engine, texts: list[str], event_type: str = "normal") -> list[dict[str, Any]]:
    load(engine, texts, event_type)
    return staged_events(engine)


def test_every_rule_classifies_its_example(engine: Engine) -> None:
    rows = classify(engine, [r.example for r in TEXT_RULES])
    assert [row["rule_key"] for row in rows] == [r.key for r in TEXT_RULES]
    for rule, row in zip(TEXT_RULES, rows, strict=True):
        assert row["phase"] == rule.phase, rule.key
        assert row["cause_category"] == rule.category, rule.key
        assert (row["model"] is not None) == (rule.model_from is not None), rule.key
        assert (row["reason"] is not None) == (rule.reason_after is not None), rule.key


@pytest.mark.parametrize("rule", CAUSE_RULES, ids=[r.key for r in CAUSE_RULES])
def test_every_cause_rule_categorises_its_example(engine: Engine, rule: Any) -> None:
    start = next(r.example for r in TEXT_RULES if r.role == "start")
    with WindowLoad(engine, WINDOW) as window_load:
        add_events(
            window_load,
            [
                ServiceEvent("svc", T0 + 1000, "normal", start),
                ServiceEvent("svc", T0 + 2000, "abnormal", rule.example),
            ],
        )
        window_load.commit()
    rebuild_marts(engine, [WINDOW_DAY])
    found = rows(engine, "select outcome, cause_category from analytics.deployment_attempts")
    assert found == [("failed", rule.category)]


@pytest.mark.parametrize(
    ("event_info", "kind", "phase", "model", "reason"),
    [
        ("[my model [beta] 0.0.1] pull image success", "phase_succeeded", "image_pulling",
         "my model [beta] 0.0.1", None),
        ("building image for model [my model [beta] 0.0.1]", "phase_start", "image_building",
         "my model [beta] 0.0.1", None),
        ("model (resnet (v2) 1.0.1) build image failed: no: space) left", "phase_failed",
         "image_building", "resnet (v2) 1.0.1", "no: space) left"),
        ("[模型 1.0.0] start model failed: 显存不足 ☹", "phase_failed", "model_startup",
         "模型 1.0.0", "显存不足 ☹"),
        ("deploy service failed: ", "deployment_failure", None, None, ""),
        ("preparing environment", "phase_start", "environment_preparation", None, None),
        ("Failed to create model image TF 3.0.0. Error: x. Error: y", "phase_failed",
         "image_building", None, "x. Error: y"),
        ("Insufficient resources. Wait until idle resources are sufficient.", "waiting",
         "resource_scheduling", None, None),
        ("Service a failed. Error: b started.", "deployment_failure", None, None, "b started."),
        # odd spacing and a repaired NUL (U+FFFD): the second try on the normalised text
        ("  start to deploy   service\t", "deployment_start", None, None, None),
        ("start to deploy service\ufffd", "deployment_start", None, None, None),
        ("[TF 3.0.0]\u00a0pull image success", "phase_succeeded", "image_pulling", "TF 3.0.0",
         None),
        ("Service\u3000svc-1  started.", "running", None, None, None),
        # a text that matches as stored keeps its own captures (its second try would match too)
        ("[TF  3.0.0] pull image failed: a  b", "phase_failed", "image_pulling", "TF  3.0.0",
         "a  b"),
        # exact and case-sensitive: near misses stay unknown (and are counted)
        ("Start to deploy service", "unknown", None, None, None),
        ("start to deploy services", "unknown", None, None, None),
        ("[TF 3.0.0] pull image succes", "unknown", None, None, None),
        ("", "unknown", None, None, None),
    ],
)  # fmt: skip
def test_captures_and_near_misses(
    engine: Engine,
    event_info: str,
    kind: str,
    phase: str | None,
    model: str | None,
    reason: str | None,
) -> None:
    [row] = classify(engine, [event_info])
    assert (row["kind"], row["phase"], row["model"], row["reason"]) == (kind, phase, model, reason)


def test_an_event_type_restricts_a_rule(engine: Engine, tmp_path: Path) -> None:
    """A rule with an event_type matches texts of that type only."""
    extra = "ops.drain\treference\t5\tabnormal\tnode {*} drained\truntime\t\t\tnode n1 drained\n"
    changed = tmp_path / "event_text_rules.tsv"
    changed.write_text(rules_path().read_text(encoding="utf-8") + extra, encoding="utf-8")
    with transaction(engine) as conn:
        sync_event_text_rules(conn, changed)
    with WindowLoad(engine, WINDOW) as window_load:
        add_events(
            window_load,
            [
                ServiceEvent("svc-a", T0 + 1, "abnormal", "node n7 drained"),
                ServiceEvent("svc-b", T0 + 1, "normal", "node n7 drained"),
            ],
        )
        window_load.commit()
    assert [(r["service_id"], r["kind"]) for r in staged_events(engine)] == [
        ("svc-a", "runtime"),
        ("svc-b", "unknown"),
    ]


LONG_TEXTS = [
    # a 1 MB model label, a 1 MB reason, 1 MB of one delimiter, 1 MB of spaces, 1 MB unknown
    pytest.param("[" + "m" * MB + "] pull image failed: x", "phase_failed", MB, id="long-model"),
    pytest.param(
        "deploy service failed: " + "é" * MB, "deployment_failure", None, id="long-reason"
    ),
    pytest.param("[" * MB, "unknown", None, id="brackets"),
    pytest.param("[" + "] pull image failed: " * (MB // 21), "phase_failed", 0, id="delimiters"),
    pytest.param("Service" + " " * MB + "x started.", "running", None, id="spaces"),
    pytest.param("start to deploy service " + "\ufffd" * MB, "deployment_start", None, id="fffd"),
    pytest.param("x" * MB, "unknown", None, id="unknown"),
]


@pytest.mark.parametrize(("event_info", "kind", "model_length"), LONG_TEXTS)
def test_one_megabyte_texts_are_classified(
    engine: Engine, event_info: str, kind: str, model_length: int | None
) -> None:
    """LIKE and string functions only: no pattern can backtrack on a 1 MB text (this runs under
    the suite's default timeout; the texts that match are classified exactly)."""
    [row] = classify(engine, [event_info])
    assert row["kind"] == kind
    if model_length is not None:
        assert len(row["model"]) == model_length
    rebuild_marts(
        engine, [day_parameters(WINDOW)["day"]]
    )  # the whole rebuild, shapes of unknown texts included
    shapes = [
        length
        for (length,) in rows(
            engine, "select length(text_shape) from analytics.unclassified_event_texts_daily"
        )
    ]
    assert all(length <= 200 for length in shapes)
    assert bool(shapes) == (kind == "unknown")


@pytest.fixture
def boundary_predicate(engine: Engine) -> str:
    """The partial index's predicate, as Postgres prints it."""
    predicate = scalar(
        engine,
        "select pg_get_expr(indpred, indrelid) from pg_index"
        " where indexrelid = 'service_events_deployment_boundary_idx'::regclass",
    )
    return str(predicate)


@pytest.mark.parametrize("rule", TEXT_RULES, ids=[r.key for r in TEXT_RULES])
def test_boundary_index_holds_exactly_the_start_success_and_failure_texts(
    engine: Engine, boundary_predicate: str, rule: Any
) -> None:
    """A day's rebuild finds the attempt open at midnight through the partial index of attempt
    boundaries, whose predicate (is_deployment_boundary, migration 0010) lists their shapes. A
    new start, success or failure text outside them fails here: replace the function in a new
    migration that also reindexes service_events_deployment_boundary_idx. Other texts must stay
    out of it. The starts among them (is_deployment_start: the scope's open attempts, the
    starts check) are exactly the start rules' texts."""
    inside, start = one(
        engine,
        f"select {boundary_predicate}, is_deployment_start(event_info)"
        " from (select :t as event_info) as service_events",
        t=rule.example,
    )
    assert inside == (rule.role in BOUNDARY_ROLES)
    assert start == (rule.role == "start")


def test_the_index_and_the_scope_query_share_one_boundary_definition(
    engine: Engine, boundary_predicate: str
) -> None:
    """The texts that bound attempts are written once, in is_deployment_boundary (migration
    0010): the partial index's predicate and the scope query's three probes call it (the two
    probes before a time through last_deployment_boundary, migration 0011), and no statement
    spells the texts out again."""
    assert boundary_predicate == "is_deployment_boundary(event_info)"
    scope = read_sql("marts/stage_mart_scope.sql")
    assert scope.count("is_deployment_boundary(events.event_info)") == 1
    assert scope.count("left join lateral last_deployment_boundary(") == 2
    lookup = scalar(engine, "select pg_get_functiondef('last_deployment_boundary'::regproc)")
    assert "is_deployment_boundary(events.event_info)" in lookup
    for statement in (scope, lookup):
        assert " like " not in statement.lower() and "deploy service failed" not in statement


def _versions(engine: Engine) -> list[tuple[int, str, int]]:
    return rows(
        engine,
        "select rule_version, checksum, rules from analytics.event_text_rule_versions"
        " order by rule_version",
    )


def test_a_changed_rules_file_is_a_new_version_and_reclassifies(
    engine: Engine, tmp_path: Path
) -> None:
    """The migrations loaded version 1; loading the same file again changes nothing; a file with
    one more line is version 2 with its own checksum, and a rebuild applies it."""
    [(version, checksum, count)] = _versions(engine)
    assert (version, count) == (1, len(RULES))
    with transaction(engine) as conn:
        again = sync_event_text_rules(conn)
    assert (again.version, again.loaded_now) == (1, False)
    load(engine, ["start to deploy service", "custom hook executed: warmup"])
    assert [r["kind"] for r in staged_events(engine)] == ["deployment_start", "unknown"]
    rebuild_marts(engine, [WINDOW_DAY])

    changed = tmp_path / "event_text_rules.tsv"
    line = (
        "ops.hook\treference\t30\t\tcustom hook executed: {*}\tother\t\t\tcustom hook executed: x\n"
    )
    changed.write_text(rules_path().read_text(encoding="utf-8") + line, encoding="utf-8")
    with transaction(engine) as conn:
        loaded = sync_event_text_rules(conn, changed)
    assert (loaded.version, loaded.rules, loaded.loaded_now) == (2, len(RULES) + 1, True)
    versions = _versions(engine)
    assert [v[0] for v in versions] == [1, 2] and versions[1][1] != checksum
    assert [r["kind"] for r in staged_events(engine)] == ["deployment_start", "runtime"]

    refresh = rebuild_marts(engine, [WINDOW_DAY])
    assert (refresh.rule_version, refresh.unclassified_events, refresh.event_coverage) == (
        2,
        0,
        1.0,
    )
    assert scalar(engine, "select count(*) from analytics.unclassified_event_texts_daily") == 0


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("k\tf\t1\t\tx {model}\tstart\t\t\tx y", "literal text follows"),
        ("k\tf\t1\t\t{*}x\tstart\t\t\tx", "starts with literal text"),
        ("k\tf\t1\t\tx\tbegin\t\t\tx", "role 'begin'"),
        ("k\tf\t1\t\tx\tphase_begin\t\t\tx", "names its phase"),
        ("k\tf\t1\t\tx\tfailure\t\tbad\tx", "category 'bad'"),
        ("k\tf\t1\t\tx\tsuccess\t\ttimeout\tx", "only failure and cause"),
        ("k\tf\t1\t\tx {reason} y\tfailure\t\t\tx", "ends the template"),
        ("k\tf\tone\t\tx\tstart\t\t\tx", "not an integer"),
        ("k\tf\t1\t\tx{*}{*}\tstart\t\t\tx", "literal text between"),
        ("k\tf\t1\t\t{*}x{*}\tcause\t\t\tx", "names its category"),
        ("k\tf\t1\tx\tstart", "5 tab-separated cells"),
    ],
)
def test_a_bad_rule_is_refused_with_its_line(line: str, problem: str) -> None:
    header = "key\tfamily\tpriority\tevent_type\ttemplate\trole\tphase\tcategory\texample"
    with pytest.raises(ValueError, match=re.escape(problem)) as raised:
        parse_rules(f"# comment\n{header}\n{line}\n", "rules.tsv")
    assert "rules.tsv:3" in str(raised.value)


def test_the_readme_example_of_adding_a_text_works(engine: Engine, tmp_path: Path) -> None:
    """README, "Adding a text": its line is a valid rule, and once loaded its text is waiting."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [line] = [x for x in readme.splitlines() if x.startswith("con.upgrading\t")]
    changed = tmp_path / "event_text_rules.tsv"
    changed.write_text(rules_path().read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    with transaction(engine) as conn:
        assert sync_event_text_rules(conn, changed).version == 2
    [row] = classify(engine, [line.split("\t")[-1]])
    assert (row["rule_key"], row["kind"]) == ("con.upgrading", "waiting")
