"""The real dashboard, in a terminal of its own, when its store breaks for good: it says
why in one line and exits 1 (never a hang)."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

DEADLINE_S = 40.0


def _children(pid: int) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def terminal_env(home: Path) -> dict[str, str]:
    """This environment without ``WORKERPOOL*`` settings, a 120x40 xterm, ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    env.update({"HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
    return env


class Terminal:
    """A process on a pseudo-terminal, its output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.fd, slave = pty.openpty()
        os.set_blocking(self.fd, False)
        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True
        )
        os.close(slave)
        self.output = b""

    def read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):  # the process closed the terminal
                self.output += os.read(self.fd, 1 << 16)

    def until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.read(0.1)

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def finish(self, what: str = "the process to exit") -> str:
        """Wait for the process to exit (killed if it does not), close the terminal;
        returns everything it printed, line ends as ``\n``."""
        try:
            self.until(lambda: self.proc.poll() is not None, what)
            self.read(0.5)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            os.close(self.fd)
        return self.output.decode(errors="replace").replace("\r", "")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_dashboard_exits_1_with_the_reason_when_its_store_breaks(tmp_path: Path) -> None:
    env = terminal_env(tmp_path)
    term = Terminal(
        [sys.executable, "-m", "workerpool_tui", "--no-server", "--store", "tasks.db"],
        env,
        tmp_path,
    )
    try:
        term.until(lambda: b"Submit" in term.output, "the dashboard on screen")
        writers = [pid for pid, cmd in _children(term.proc.pid) if "sqlite_writer" in cmd]
        assert len(writers) == 1
        os.kill(writers[0], signal.SIGKILL)  # the store's writer process dies
        term.send(b"n")  # a submission needs the store: the engine finds out
        term.until(lambda: b"Payload" in term.output, "the submit form")
        term.send(b"\x13")  # Ctrl+S
    finally:
        text = term.finish("the dashboard to exit")
    assert term.proc.returncode == 1
    # After the screen is restored (escape codes), one line says why.
    reasons = re.findall(r"error: [^\x1b\n]*", text)
    assert len(reasons) == 1, text[-400:]
    assert "writer process" in reasons[0] and reasons[0].endswith("; stopped")
