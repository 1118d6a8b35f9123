"""Processes for ``bench/cluster.py``: starting and stopping them by id, reading their
lines with a deadline, and their CPU time from ``/proc`` -- theirs and that of the
PostgreSQL backends serving them.

A backend serves us when its client is a TCP socket one of our processes holds: the
sockets' local ports (``/proc/<pid>/fd`` and ``/proc/net/tcp``) are matched to
``pg_stat_activity.client_port``, and the backend's CPU is read from ``/proc/<backend>/stat``
(PostgreSQL runs on this machine). Backends are looked up again at every poll, so one that
connects during a run counts from zero and one that leaves keeps its last reading.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ processes
class Proc:
    """A child process whose stdout lines are read by a thread (so reads have deadlines)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: str) -> None:
        self.name = name
        self.popen = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.pid = self.popen.pid
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"read-{name}")
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        """The first line starting with ``prefix``; other lines are kept for the error."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, left))
            except queue.Empty:
                raise RuntimeError(self.failure(f"no {prefix!r} within {timeout:g}s")) from None
            if line is None:
                raise RuntimeError(self.failure(f"exited ({self.popen.wait()}) before {prefix!r}"))
            if line.startswith(prefix):
                return line
            self.tail = [*self.tail[-20:], line]

    def poll_line(self, prefix: str) -> str | None:
        """A line starting with ``prefix`` if one has arrived; never waits."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)  # stays at the end for the next reader
                return None
            if line.startswith(prefix):
                return line
            self.tail = [*self.tail[-20:], line]

    def drain_lines(self) -> None:
        """Keep what the process printed (for :meth:`failure`) once it has exited."""
        self._reader.join(timeout=5)
        self.poll_line("\0")

    def failure(self, why: str) -> str:
        return f"{self.name} (pid {self.pid}): {why}" + "".join(f"\n  | {t}" for t in self.tail)

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30.0, *, signalled: bool = False) -> int:
        """SIGTERM by pid (unless ``signalled`` already), then SIGKILL after ``timeout``;
        the exit status."""
        if self.popen.poll() is None:
            if not signalled:
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):  # the pipe is gone with the process
                self.popen.stdin.close()
        self._reader.join(timeout=5)
        return self.popen.returncode


def stop_all(procs: Iterable[Proc]) -> None:
    """Stop every process, each by its pid, all at once (they shut down in parallel)."""
    procs = [p for p in procs if p.alive()]
    for p in procs:
        os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        p.stop(signalled=True)


# ------------------------------------------------------------------ CPU from /proc
def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, children: bool = True) -> float | None:
    """User + system CPU of ``pid`` (+ of its reaped children); ``None`` once it is gone."""
    fields = _stat(pid)
    if fields is None:
        return None
    # After "pid (comm) ": state is fields[0]; utime, stime, cutime, cstime are 11..14.
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / TICK


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    found = [pid]
    for p in found:
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) or 0.0 for p in descendants(pid))


def client_ports(pids: Iterable[int], server_port: int) -> set[int]:
    """Local ports of the TCP connections to ``server_port`` that ``pids`` hold."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if int(parts[9]) in inodes and int(parts[2].rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def postgres_cpu_by_pid() -> dict[int, float]:
    """Every process named ``postgres`` on the machine (backends of anybody, the WAL
    writer, checkpointer, autovacuum): context, not attributable to one run."""
    found: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        cpu = cpu_seconds(int(name), children=False)
        if cpu is not None:
            found[int(name)] = cpu
    return found


class CpuMeter:
    """CPU used between :meth:`start` and :meth:`stop` by our processes (each by name) and
    by the PostgreSQL backends serving them; call :meth:`poll` a few times a second."""

    def __init__(
        self,
        procs: dict[str, int],
        backends_of: Callable[[set[int]], dict[int, int]],
        pg_port: int,
    ) -> None:
        self.procs = procs
        self._backends_of = backends_of
        self._pg_port = pg_port
        self._proc0: dict[str, float] = {}
        self._proc1: dict[str, float] = {}
        self._be0: dict[int, float] = {}
        self._be_last: dict[int, float] = {}
        self._pg_all0: dict[int, float] = {}
        self.pg_all = 0.0

    def _backend_pids(self) -> list[int]:
        pids = [p for pid in self.procs.values() for p in descendants(pid)]
        ports = client_ports(pids, self._pg_port)
        return list(self._backends_of(ports)) if ports else []

    def start(self) -> None:
        self._proc0 = {n: tree_cpu(pid) for n, pid in self.procs.items()}
        for b in self._backend_pids():
            cpu = cpu_seconds(b, children=False)
            if cpu is not None:
                self._be0[b] = self._be_last[b] = cpu
        self._pg_all0 = postgres_cpu_by_pid()

    def poll(self) -> None:
        for b in self._backend_pids():
            cpu = cpu_seconds(b, children=False)
            if cpu is not None:
                self._be0.setdefault(b, 0.0)  # connected during the run
                self._be_last[b] = cpu
        for b in list(self._be_last):
            cpu = cpu_seconds(b, children=False)
            if cpu is not None:
                self._be_last[b] = cpu

    def stop(self) -> None:
        self.poll()
        self._proc1 = {n: tree_cpu(pid) for n, pid in self.procs.items()}
        # Processes that ended during the run are left out; ones it started count whole.
        now = postgres_cpu_by_pid()
        self.pg_all = sum(cpu - self._pg_all0.get(pid, 0.0) for pid, cpu in now.items())

    def result(self) -> dict[str, Any]:
        return {
            "procs": {n: self._proc1[n] - self._proc0[n] for n in self.procs},
            "postgres": sum(self._be_last[b] - self._be0[b] for b in self._be_last),
            "backends": len(self._be_last),
            "postgres_all": self.pg_all,
        }
