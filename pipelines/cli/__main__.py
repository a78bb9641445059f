"""`python -m pipelines.cli`: the `modelarts-etl` command."""

from pipelines.cli import exit_without_teardown, main

exit_without_teardown(main())
