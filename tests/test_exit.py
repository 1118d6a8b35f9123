"""The process never hangs at exit on a thread that outlived the run."""

from __future__ import annotations

import subprocess
import sys

_STUCK = """
import threading
from workerpool_tui import cli

cli.EXIT_JOIN_S = 0.2
threading.Thread(target=threading.Event().wait, name="stuck handler").start()
cli._leave_stuck_threads(3)
print("not reached")
"""


def test_a_thread_that_outlives_the_run_does_not_keep_the_process() -> None:
    out = subprocess.run([sys.executable, "-c", _STUCK], capture_output=True, text=True, timeout=30)
    assert out.returncode == 3
    assert "leaving a thread that did not stop: stuck handler" in out.stderr
    assert "not reached" not in out.stdout
