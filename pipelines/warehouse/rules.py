"""The event text rules: `sql/rules/event_text_rules.tsv`, parsed, checked and loaded as a version.

The file is the one reviewed source of what a text means (README: "Event text rules"). Each
load of a changed file (its sha256 differs from the latest version's) becomes a new row in
`analytics.event_text_rule_versions` with its rules in `analytics.event_text_rules`; the mart
rebuild reads the latest version. Templates are compiled here into LIKE patterns and the string
positions the SQL captures with, so the marts never run a regular expression on a text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg

from pipelines.warehouse.sql_files import read_sql, sql_root

log = logging.getLogger(__name__)

RULES_FILE: Final = "rules/event_text_rules.tsv"
COLUMNS: Final = (
    "key",
    "family",
    "priority",
    "event_type",
    "template",
    "role",
    "phase",
    "category",
    "example",
)
ROLES: Final = (
    "start",
    "phase_begin",
    "phase_success",
    "failure",
    "success",
    "runtime",
    "waiting",
    "other",
    "cause",
)
PHASES: Final = (
    "image_building",
    "environment_preparation",
    "resource_scheduling",
    "image_pulling",
    "model_startup",
)
CATEGORIES: Final = (
    "insufficient_resources",
    "image_build",
    "image_pull",
    "startup_health",
    "timeout",
    "unknown",
)
_PLACEHOLDER = re.compile(r"(\{[A-Za-z_*]+\})")


class RulesFileError(ValueError):
    """The rules file cannot be loaded: the message names the line and the problem."""


@dataclass(frozen=True)
class EventTextRule:
    """One line of the rules file, with what the SQL needs to match and capture."""

    key: str
    family: str
    priority: int
    event_type: str | None
    template: str
    role: str
    phase: str | None
    category: str | None
    example: str
    like_pattern: str
    first_char: str | None  # text rules: the first character every match starts with
    model_from: int | None  # 1-based character position where the model label starts
    model_until: str | None  # the literal text right after the model label
    model_until_is_suffix: bool  # that literal ends the template (search from the end)
    reason_after: str | None  # the literal text right before the reason

    def row(self, version: int) -> tuple[Any, ...]:
        return (
            version,
            self.key,
            self.family,
            self.priority,
            self.event_type,
            self.template,
            self.role,
            self.phase,
            self.category,
            self.example,
            self.like_pattern,
            self.first_char,
            self.model_from,
            self.model_until,
            self.model_until_is_suffix,
            self.reason_after,
        )


def _like_escape(literal: str) -> str:
    return literal.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def compile_rule(fields: dict[str, str], where: str) -> EventTextRule:
    """One rule from its columns; RulesFileError naming `where` when it is not valid."""

    def fail(problem: str) -> RulesFileError:
        return RulesFileError(f"{where}: {problem}")

    key, role, template = fields["key"], fields["role"], fields["template"]
    phase = fields["phase"] or None
    category = fields["category"] or None
    if not key or not fields["family"] or not template or not fields["example"]:
        raise fail("key, family, template and example are required")
    if role not in ROLES:
        raise fail(f"role {role!r} is not one of {', '.join(ROLES)}")
    if phase is not None and phase not in PHASES:
        raise fail(f"phase {phase!r} is not one of {', '.join(PHASES)}")
    if category is not None and category not in CATEGORIES:
        raise fail(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if category is not None and role not in ("failure", "cause"):
        raise fail("only failure and cause rules have a category")
    if role in ("phase_begin", "phase_success") and phase is None:
        raise fail(f"a {role} rule names its phase")
    if role == "cause" and category is None:
        raise fail("a cause rule names its category")
    try:
        priority = int(fields["priority"])
    except ValueError:
        raise fail(f"priority {fields['priority']!r} is not an integer") from None
    tokens = _PLACEHOLDER.split(template)  # literal, placeholder, literal, ..., literal
    literals, holders = tokens[0::2], tokens[1::2]
    if holders.count("{model}") > 1 or holders.count("{reason}") > 1:
        raise fail("{model} and {reason} may appear once each")
    if any(not lit for lit in literals[1:-1]):
        raise fail("two placeholders need literal text between them")
    first_char = model_from = model_until = reason_after = None
    model_until_is_suffix = False
    if role != "cause":
        if not literals[0]:
            raise fail("a text rule starts with literal text (the match key is its first char)")
        first_char = literals[0][0]
    elif "{model}" in holders or "{reason}" in holders:
        raise fail("cause rules capture nothing")
    if "{model}" in holders:
        if holders[0] != "{model}" or not literals[1]:
            raise fail("{model} is the first placeholder and literal text follows it")
        model_from = len(literals[0]) + 1
        model_until = literals[1]
        model_until_is_suffix = len(holders) == 1
    if "{reason}" in holders:
        if holders[-1] != "{reason}" or literals[-1]:
            raise fail("{reason} ends the template")
        reason_after = literals[-2]
    like = "".join(_like_escape(token) if i % 2 == 0 else "%" for i, token in enumerate(tokens))
    return EventTextRule(
        key=key,
        family=fields["family"],
        priority=priority,
        event_type=fields["event_type"] or None,
        template=template,
        role=role,
        phase=phase,
        category=category,
        example=fields["example"],
        like_pattern=like,
        first_char=first_char,
        model_from=model_from,
        model_until=model_until,
        model_until_is_suffix=model_until_is_suffix,
        reason_after=reason_after,
    )


def rules_path() -> Path:
    return sql_root() / RULES_FILE


def parse_rules(text: str, name: str = RULES_FILE) -> list[EventTextRule]:
    """The rules of a rules file's text (tab-separated, header first, `#` comments)."""
    rules: list[EventTextRule] = []
    header: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            if tuple(header) != COLUMNS:
                raise RulesFileError(f"{name}:{number}: the header must be {'|'.join(COLUMNS)}")
            continue
        if len(cells) != len(COLUMNS):
            raise RulesFileError(
                f"{name}:{number}: {len(cells)} tab-separated cells, expected {len(COLUMNS)}"
            )
        rules.append(compile_rule(dict(zip(COLUMNS, cells, strict=True)), f"{name}:{number}"))
    keys = [r.key for r in rules]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise RulesFileError(f"{name}: keys used twice: {', '.join(duplicates)}")
    if not rules:
        raise RulesFileError(f"{name}: no rules")
    return rules


@dataclass(frozen=True)
class RuleVersion:
    version: int
    checksum: str
    rules: int
    loaded_now: bool


def sync_event_text_rules(conn: psycopg.Connection[Any], path: Path | None = None) -> RuleVersion:
    """Load the rules file as a new version when its sha256 differs from the latest version's.

    Runs in the caller's transaction (apply_migrations holds the migration lock around it), so
    concurrent processes load a changed file once.
    """
    path = path or rules_path()
    data = path.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    latest = conn.execute(read_sql("rules/select_latest_rule_version.sql")).fetchone()
    if latest is not None and latest[1] == checksum:
        return RuleVersion(int(latest[0]), checksum, int(latest[2]), loaded_now=False)
    rules = parse_rules(data.decode("utf-8"), path.name)
    version = 1 if latest is None else int(latest[0]) + 1
    conn.execute(
        read_sql("rules/insert_rule_version.sql"),
        {"version": version, "checksum": checksum, "source": path.name, "rules": len(rules)},
    )
    with conn.cursor() as cur:
        cur.executemany(read_sql("rules/insert_rule.sql"), [r.row(version) for r in rules])
    log.info(
        "event text rules: loaded version %d (%d rules, sha256 %s)",
        version,
        len(rules),
        checksum[:12],
    )
    return RuleVersion(version, checksum, len(rules), loaded_now=True)


def latest_rule_version(conn: psycopg.Connection[Any]) -> RuleVersion | None:
    """The version the marts apply now (None before the first load)."""
    latest = conn.execute(read_sql("rules/select_latest_rule_version.sql")).fetchone()
    if latest is None:
        return None
    return RuleVersion(int(latest[0]), str(latest[1]), int(latest[2]), loaded_now=False)
