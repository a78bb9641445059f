"""What the report's page and its charts share, without matplotlib (the page imports it, and a
report whose charts are all cached never imports matplotlib): the chart type, the phase order,
labels and duration units."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    """One rendered chart: `name` identifies it in the page (data-chart) and in its SVG ids."""

    name: str
    svg: str


# The deployment order of docs/VOCABULARY.md.
PHASES = (
    "image_building",
    "environment_preparation",
    "resource_scheduling",
    "image_pulling",
    "model_startup",
)


def label(key: str) -> str:
    """A cause or phase identifier as people read it."""
    return key.replace("_", " ")


def duration_unit(values_ms: Sequence[float]) -> tuple[str, float]:
    """The unit that keeps the largest value readable: (unit, ms per unit)."""
    largest = max(values_ms, default=0)
    if largest >= 120_000:
        return "min", 60_000.0
    return ("s", 1000.0) if largest >= 2_000 else ("ms", 1.0)
