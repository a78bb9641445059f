"""The tests of the pipeline; `REPO` is the repository they belong to."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
