"""The repository's documents send readers to the repository's own files: no link or path to
files beside the checkout (`../shared/...`, `/work/shared/...`), which a user of the repository
does not have, and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import REPO

DOCUMENTS = sorted(
    p
    for p in REPO.rglob("*.md")
    if not any(part.startswith(".") or part == "node_modules" for part in p.relative_to(REPO).parts)
)
OUTSIDE = re.compile(r"(\.\./)+shared/|/work/shared")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_documents_are_found() -> None:
    names = {p.relative_to(REPO).as_posix() for p in DOCUMENTS}
    assert {"README.md", "pipelines/simulator/README.md", "docs/API.md"} <= names


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_a_document_names_no_file_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert OUTSIDE.findall(text) == []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s):, mailto:
            continue
        resolved = (document.parent / target).resolve()
        assert resolved.is_relative_to(REPO) and resolved.exists(), target
