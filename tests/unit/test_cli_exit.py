"""`python -m pipelines.cli` ends without the interpreter's teardown of its modules
(`exit_without_teardown`): the exit code, the console's last output and the atexit functions are
as with a normal exit; what is skipped is the teardown; another thread alive means the normal
exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import REPO

SCRIPT = """
import atexit, sys, threading, time
from pipelines.cli import exit_without_teardown

class Teardown:
    def __del__(self):
        sys.stdout.write(" teardown")
        sys.stdout.flush()

kept = Teardown()  # a module global: deleted only by the interpreter's teardown
atexit.register(lambda: sys.stdout.write(" atexit"))
if sys.argv[1] == "thread":
    threading.Thread(target=time.sleep, args=(0.2,)).start()
sys.stdout.write("last line")  # buffered: a pipe
exit_without_teardown(3)
"""


@pytest.mark.parametrize(("case", "expected"), [
    ("alone", "last line atexit"),
    ("thread", "last line atexit teardown"),  # another thread: the interpreter's own exit
])  # fmt: skip
def test_the_exit_keeps_code_output_and_atexit(case: str, expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, case], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, expected, "")
