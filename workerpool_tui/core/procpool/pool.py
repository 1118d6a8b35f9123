"""The engine's side of the worker processes: a fixed-size pool of long-lived children
(:mod:`.child`), one task at a time each, over a socket pair.

Why our own small pool rather than ``concurrent.futures.ProcessPoolExecutor`` or
``multiprocessing.Pool``: a task must be stoppable whatever its handler does (signal,
``kill_grace``, kill, replace) and a crash must fail only its task; the executors give
neither (a killed child breaks the whole ``ProcessPoolExecutor``; ``Pool`` cannot cancel
a running call), and their pickling hides what crosses. Here each child is
``python -m workerpool_tui.core.procpool.child`` started with ``subprocess`` in its own
session (Ctrl-C in a terminal reaches only the engine) with ``PR_SET_PDEATHSIG``; the
engine reads each socket without blocking the loop (``anyio.wait_readable``), and
msgspec frames carry payloads, progress, log lines and results (:mod:`.protocol`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import anyio
import msgspec

from ..models import TaskError
from .process import Child, describe_exit
from .protocol import (
    Done,
    Failed,
    Interrupted,
    Log,
    Progress,
    Ready,
    Run,
    decode_from_child,
    frame,
    rss_bytes,
)

START_TIMEOUT_S = 30.0
"""How long a new child may take to say it is ready (imports on a loaded machine)."""
RECV_BYTES = 1 << 16
"""Read size: below malloc's mmap threshold, so a read is not an mmap, mremap and munmap
(a 1 MiB read was, on every task)."""
MEMORY_POLL_S = 0.1
"""How often a running child's memory is read, when ``process_memory_limit`` is set."""


class ProcessInfo(msgspec.Struct, frozen=True):
    """One worker process, as read now (``GET /api/v1/workers``' ``processes``)."""

    slot: int
    pid: int
    task_id: str | None
    cpu_pct: float
    """CPU since the previous read, in % of one core."""
    rss: int
    """Resident memory, bytes."""
    tasks_done: int
    """Tasks this process ran (a replacement starts at 0)."""
    restarts: int
    """Times this slot's process died or was killed and was replaced (recycling is not
    counted)."""


class ProcessTaskError(Exception):
    """A task in a worker process ended badly: ``error`` says how (its handler's
    exception, ``worker_crashed``, ``memory_limit``, ``invalid_result``)."""

    def __init__(self, error: TaskError, result: msgspec.Raw | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.result = result


class _Died(Exception):
    pass


class ProcessPool:
    def __init__(
        self,
        size: int,
        *,
        max_tasks: int,
        memory_limit: int,
        kill_grace: float,
        log: Callable[[str, str], None],
    ) -> None:
        self.size = size
        self.max_tasks = max_tasks
        self.memory_limit = memory_limit
        self.kill_grace = kill_grace
        self._log = log
        self.children: list[Child] = []
        self._idle: list[Child] = []
        self._free = anyio.Semaphore(size)
        self._reaping: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        self.started = False
        self._want_rss = bool(memory_limit)
        """Children read their memory after a task only when a limit needs it."""

    def start(self) -> None:
        """Start every child (their imports go on while the engine starts)."""
        self.started = True
        for slot in range(self.size):
            child = Child(slot, 0)
            self.children.append(child)
            self._idle.append(child)

    async def run(
        self,
        task_id: str,
        target: str,
        payload: dict[str, Any],
        attempt: int,
        *,
        progress: Callable[[float, str | None], None],
        log: Callable[[str], None],
        parents: dict[str, Any] | None = None,
    ) -> msgspec.Raw | None:
        """Run one task in a child; its JSON result. Raises :class:`ProcessTaskError`;
        a cancellation signals the child, waits ``kill_grace`` for it to stop, kills and
        replaces it if it did not, and is re-raised."""
        # The gates never start more process tasks than there are processes, so the
        # semaphore is a safeguard: taken without a checkpoint (two loop passes) when free.
        try:
            self._free.acquire_nowait()
        except anyio.WouldBlock:
            await self._free.acquire()
        try:
            child = self._idle.pop()
            if child.dead:  # its replacement could not be started last time
                child = self._replace(child, restart=False)
            try:
                if child.dead:
                    raise ProcessTaskError(
                        TaskError("worker_crashed", "no worker process could be started")
                    )
                try:
                    if not child.ready:
                        with anyio.fail_after(START_TIMEOUT_S):
                            msg = await self._recv(child)
                        if not isinstance(msg, Ready):
                            raise _Died
                        child.ready = True
                    await self._send(
                        child,
                        frame(Run(task_id, target, payload, attempt, self._want_rss, parents)),
                    )
                    child.task_id, child.since = task_id, time.monotonic()
                    return await self._exchange(child, progress, log)
                except anyio.get_cancelled_exc_class():
                    with anyio.CancelScope(shield=True):
                        await self._stop(child)
                    raise
                except (_Died, OSError, TimeoutError):
                    child.dead = True
                    code = await self._exit_code(child)
                    raise ProcessTaskError(
                        TaskError(
                            "worker_crashed",
                            f"the worker process {child.pid} died while running the task"
                            f" ({describe_exit(code)})",
                        )
                    ) from None
            finally:
                child.task_id = None
                self._after(child)
        finally:
            self._free.release()

    async def _send(self, child: Child, data: bytes) -> None:
        """Write a whole frame to the child's socket (ours does not block: a payload
        larger than the socket's buffer goes in pieces as the child reads them)."""
        sock = child.sock
        view = memoryview(data)
        while True:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sent = 0
            if sent == len(view):
                return
            view = view[sent:]
            await anyio.wait_writable(sock)

    async def _exchange(
        self,
        child: Child,
        progress: Callable[[float, str | None], None],
        log: Callable[[str], None],
    ) -> msgspec.Raw | None:
        while True:
            msg = await self._recv(child)
            if isinstance(msg, Progress):
                progress(msg.pct, msg.message)
            elif isinstance(msg, Log):
                log(msg.line)
            elif isinstance(msg, Done):
                child.rss = msg.rss
                return None if msg.result is None else msgspec.Raw(msg.result)
            elif isinstance(msg, Failed):
                child.rss = msg.rss
                result = None if msg.result is None else msgspec.Raw(msg.result)
                raise ProcessTaskError(TaskError(msg.type, msg.message, msg.traceback), result)
            elif isinstance(msg, Interrupted):
                child.rss = msg.rss
                raise ProcessTaskError(TaskError("interrupted", "the handler was interrupted"))

    async def _recv(self, child: Child) -> Any:
        """The child's next message (``_Died`` at end of stream)."""
        limit = self.memory_limit
        while not child.frames:
            if limit and child.task_id is not None:
                with anyio.move_on_after(MEMORY_POLL_S):
                    await anyio.wait_readable(child.sock)
                rss = rss_bytes(child.pid)
                if rss > 2 * limit:
                    self._kill(child)
                    raise ProcessTaskError(
                        TaskError(
                            "memory_limit",
                            f"the worker process grew to {rss >> 20} MiB, past twice"
                            f" worker.process_memory_limit ({limit >> 20} MiB): killed",
                        )
                    )
            else:
                await anyio.wait_readable(child.sock)
            try:
                data = child.sock.recv(RECV_BYTES)
            except BlockingIOError:
                continue
            except OSError:
                raise _Died from None
            if not data:
                raise _Died
            try:
                child.frames.extend(child.reader.feed(data))
            except ValueError:
                raise _Died from None
        try:
            return decode_from_child(child.frames.popleft())
        except msgspec.DecodeError:
            raise _Died from None

    async def _stop(self, child: Child) -> None:
        """Cancel the task on ``child``: signal, wait ``kill_grace``, else kill."""
        if child.dead:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGUSR1)
        with anyio.move_on_after(self.kill_grace):
            try:
                while True:
                    msg = await self._recv(child)
                    if isinstance(msg, (Done, Failed, Interrupted)):
                        return  # it stopped: still good for the next task
            except (_Died, ProcessTaskError, OSError):
                pass
        self._kill(child)

    def _kill(self, child: Child) -> None:
        child.dead = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)

    async def _exit_code(self, child: Child) -> int | None:
        with anyio.move_on_after(1.0):
            while child.proc.poll() is None:  # noqa: ASYNC110 - no event for a child's exit
                await anyio.sleep(0.005)
        return child.proc.returncode

    def _after(self, child: Child) -> None:
        """Back to the idle list, or replaced (dead, too many tasks, grown too big)."""
        self._reap()
        if not child.dead:
            child.tasks_done += 1
        why = None
        if child.dead:
            why = "restart"
        elif child.tasks_done >= self.max_tasks:
            why = "recycle"
        elif self.memory_limit and child.rss > self.memory_limit:
            why = "recycle"
            self._log(
                "info",
                f"worker process {child.pid}: {child.rss >> 20} MiB after its task, past"
                f" worker.process_memory_limit: replaced",
            )
        if why is None:
            self._idle.append(child)
            return
        if why == "restart":
            self.restarts += 1
        self._idle.append(self._replace(child, restart=why == "restart"))

    def _replace(self, child: Child, *, restart: bool) -> Child:
        """A new process in ``child``'s slot; ``child`` itself (still dead) when one cannot
        be started now (the next task on the slot tries again, and fails if it cannot)."""
        if child.sock.fileno() != -1:
            self._retire(child)
        try:
            fresh = Child(child.slot, child.restarts + restart)
        except OSError as exc:
            self._log("error", f"cannot start a worker process: {exc}")
            child.dead = True
            return child
        self.children[self.children.index(child)] = fresh
        return fresh

    def _retire(self, child: Child) -> None:
        child.sock.close()  # a live child reads the end of its stream and exits
        self._reaping.append(child.proc)

    def _reap(self) -> None:
        self._reaping = [p for p in self._reaping if p.poll() is None]

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop every child (they exit when their socket closes); kill the slow ones."""
        for child in self.children:
            self._retire(child)
        self.children.clear()
        self._idle.clear()
        with anyio.move_on_after(grace_s):
            while any(p.poll() is None for p in self._reaping):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        for proc in self._reaping:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1.0)
        self._reaping.clear()

    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def infos(self) -> list[ProcessInfo]:
        return [
            ProcessInfo(
                slot=c.slot,
                pid=c.pid,
                task_id=c.task_id,
                cpu_pct=round(c.sample_cpu(), 1),
                rss=rss_bytes(c.pid),
                tasks_done=c.tasks_done,
                restarts=c.restarts,
            )
            for c in sorted(self.children, key=lambda c: c.slot)
        ]
