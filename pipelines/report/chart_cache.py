"""The report's charts drawn only when what they show changed.

Drawing the seven charts costs a run most of the report's time: importing matplotlib (~0.6 s) and
drawing each figure twice (`bbox_inches="tight"` measures, then draws). A chart is a pure function
of its arguments, so its SVG is kept in a folder beside the report under a hash of the chart
function's name, its arguments (repr of the report's frozen dataclasses) and the code that draws
it (charts.py, chart_types.py and matplotlib's version). A later report whose chart data did not
change reads the SVG back; matplotlib is imported only for a chart that must be drawn. After a
report, the folder keeps the charts that report used, nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines.report.chart_types import Chart

log = logging.getLogger(__name__)

# a chart function of pipelines/report/charts.py, by name, and its arguments
Draw = Callable[..., Chart]

_HERE = Path(__file__).resolve().parent


def _code_version() -> bytes:
    """What a chart's drawing depends on besides its arguments."""
    digest = hashlib.sha256()
    for name in ("charts.py", "chart_types.py"):
        digest.update((_HERE / name).read_bytes())
    digest.update(metadata.version("matplotlib").encode())
    return digest.digest()


def draw_now(function: str, *args: Any) -> Chart:
    """Draw the chart (imports matplotlib)."""
    from pipelines.report import charts

    chart: Chart = getattr(charts, function)(*args)
    return chart


class ChartCache:
    """Charts kept in `folder` (created on first write), keyed by what they show."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._version = _code_version()
        self._used: set[str] = set()
        self.drawn = 0
        self.reused = 0

    def _key(self, function: str, args: tuple[Any, ...]) -> str:
        digest = hashlib.sha256(self._version)
        digest.update(f"{function}{args!r}".encode())
        return digest.hexdigest()

    def chart(self, function: str, *args: Any) -> Chart:
        """The chart `function(*args)` of charts.py: read back, or drawn and kept."""
        key = self._key(function, args)
        self._used.add(key)
        path = self.folder / f"{key}.svg"
        try:
            name, _, svg = path.read_text(encoding="utf-8").partition("\n")
            self.reused += 1
            return Chart(name, svg)
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        chart = draw_now(function, *args)
        self.drawn += 1
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # written beside and renamed: a report running at the same time reads it whole or not
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=self.folder)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(f"{chart.name}\n{chart.svg}")
            os.replace(tmp, path)
        except OSError as error:  # a cache that cannot be written costs a redraw, nothing else
            log.warning("report charts not kept in %s: %s", self.folder, error)
        return chart

    def prune(self) -> None:
        """Remove the kept charts this report did not use."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.svg"):
            if path.stem not in self._used:
                path.unlink(missing_ok=True)
