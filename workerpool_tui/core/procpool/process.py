"""One worker process as the engine holds it: the ``subprocess`` running
:mod:`.child`, our end of its socket, and what the pool counts about it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque

from .protocol import FrameReader


class Child:
    """One worker process and our end of its socket."""

    def __init__(self, slot: int, restarts: int) -> None:
        self.slot = slot
        self.restarts = restarts
        self.tasks_done = 0
        self.task_id: str | None = None
        self.since = 0.0
        self.rss = 0
        self.ready = False
        self.dead = False
        self.frames: deque[bytes] = deque()
        self.reader = FrameReader()
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "workerpool_tui.core.procpool.child",
                    str(theirs.fileno()),
                    str(os.getpid()),
                ],
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # a dashboard owns the terminal: ctx.log instead
                env=_child_env(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.pid = self.proc.pid
        self._cpu = (time.monotonic(), _cpu_seconds(self.pid))
        self.cpu_pct = 0.0

    def sample_cpu(self) -> float:
        """CPU % since the last sample (of one core)."""
        now, cpu = time.monotonic(), _cpu_seconds(self.pid)
        then, before = self._cpu
        if now - then > 0.05:
            self.cpu_pct = max(0.0, 100.0 * (cpu - before) / (now - then))
            self._cpu = (now, cpu)
        return self.cpu_pct


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child imports handlers as this process does.
    env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
    return env


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
