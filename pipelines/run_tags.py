"""The tags of the project's Dagster runs, in one place: Dagster's own that the project sets or
reads (tests/unit/test_pool_wait.py compares them with Dagster's constants), and its own."""

# Dagster's: the partition of a one-partition run, the range of a single-run backfill, the
# schedule that launched a run.
PARTITION = "dagster/partition"
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
SCHEDULE_NAME = "dagster/schedule_name"

# The project's: what started a run (`nightly`, or the CLI command), and, on runs the CLI
# executes in its own process, that process (host and pid namespace, pid, start time), so that a
# later CLI run can tell the process is gone (pipelines/dagster_runs.py).
TRIGGER = "pipelines/trigger"
HOST = "pipelines/host"
PID = "pipelines/pid"
PROCESS_STARTED = "pipelines/process_started"
