"""Local simulator of the ModelArts service event API (demos, development, tests, benchmarks)."""
