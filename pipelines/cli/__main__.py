"""`python -m pipelines.cli`: the `modelarts-etl` command."""

import sys

from pipelines.cli import main

sys.exit(main())
