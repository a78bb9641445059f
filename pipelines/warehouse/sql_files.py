"""Find the project's SQL files, in a source checkout or an installed wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


@cache
def sql_root() -> Path:
    """The `sql/` folder: `pipelines/_sql` in a wheel, the repo's `sql/` in a checkout."""
    for candidate in (_PACKAGE_DIR / "_sql", _PACKAGE_DIR.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ folder next to {_PACKAGE_DIR}")


@cache
def read_sql(relative_path: str) -> str:
    """The text of one SQL file, e.g. `read_sql("load/insert_new_events.sql")`."""
    return (sql_root() / relative_path).read_text(encoding="utf-8")
