"""`python -m pipelines.cli`: the `modelarts-etl` command."""

from pipelines.cli import run

run()
