"""The worker pool: long-lived workers that take the next task and run it.

Hot path (designed against PERF-NOTES): a worker pops from the backlog without a hand-off,
keeps one cancel scope across many tasks (a new scope only after a cancel or timeout,
since a scope costs microseconds), and leaves timeouts to a watchdog that sleeps until the
earliest deadline. Workers give the loop a turn every few hundred microseconds of work.

Running one task is :mod:`.execution`; sizing the pool (resize, pause, the scaling rule)
is :mod:`.sizing`: :class:`WorkerPool` is both, over the state kept here.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import types
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from .execution import TaskExecution, error_summary
from .models import Task, TaskStatus
from .pool import PoolState, Worker
from .sizing import PoolSizing

if TYPE_CHECKING:
    from .engine import Engine

ABANDON_AFTER_S = 5.0
"""At shutdown, after the interrupt: how long a sync handler has to notice it (through
``ctx.cancel_requested`` or ``ctx.progress``) before its thread is abandoned."""
SLICE_S = 0.002
"""Workers together hold the loop for at most about this long between turns."""


def _backend_checkpoint() -> Callable[[], Awaitable[None]]:
    """The running backend's checkpoint, looked up once: ``anyio.lowlevel.checkpoint``
    finds the backend on every call (three coroutines and a loop lookup), and a busy
    worker takes one per slice. On asyncio it is ``sleep(0)``, as anyio's own is."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.lowlevel.checkpoint
    return _sleep0


@types.coroutine
def _sleep0() -> Generator[None, None, None]:
    """``asyncio.sleep(0)``'s own yield: the task is scheduled again at once."""
    yield


__all__ = ["ABANDON_AFTER_S", "SLICE_S", "PoolState", "WorkerPool", "error_summary"]


class WorkerPool(TaskExecution, PoolSizing):
    """The engine's workers. Reads the engine's collaborators (registry, backlog,
    journal, bus, stats) and never outlives it."""

    def __init__(self, engine: Engine) -> None:
        cfg = engine.config
        self._engine = engine
        self._wcfg = cfg.worker
        self._tcfg = cfg.task
        self._limiter = anyio.CapacityLimiter(max(1, cfg.task.max_concurrent_tasks))
        self.min_workers = min(cfg.worker.min_workers, cfg.task.max_concurrent_tasks)
        self.max_workers = min(cfg.worker.max_workers, cfg.task.max_concurrent_tasks)
        self.auto_scaling = cfg.worker.enable_auto_scaling
        self.paused = False
        self.workers: dict[int, Worker] = {}
        """The counted pool (``current``); retiring workers have left it."""
        self.live: dict[int, Worker] = {}
        """Every worker still running, retiring ones included."""
        self.idle: list[Worker] = []
        self._next_worker_id = 1
        self.busy = 0
        self._busy_sum = 0
        self._busy_samples = 0
        self._watch_next = math.inf
        self._watch_wake: anyio.Event | None = None
        self.finish_waiters: dict[str, anyio.Event] = {}
        self._idle_all: anyio.Event | None = None
        self._slice_start = time.monotonic()
        self._tg: TaskGroup | None = None
        self.loop_thread = threading.get_ident()
        self.done = 0
        self.failed = 0

    def start(self, tg: TaskGroup) -> None:
        """Bind to the engine's collaborators (now complete) and start the workers."""
        engine = self._engine
        self._tg = tg
        self.loop_thread = threading.get_ident()
        self._now = engine.clock.now
        self._type_of = engine.types.get
        self._registry = engine.registry
        self._backlog = engine.backlog
        self._gates = engine.gates
        self._changed: Callable[[Task], None] = engine.journal.changed
        self._journaling = engine.journaling
        self._publish = engine.bus.publish_task  # never used for progress
        self._stats = engine.stats_data
        # The running backend's Event class, made directly: ``anyio.Event()`` looks the
        # backend up on every call, and an idle worker makes one per wait (hot path).
        self._new_event: Callable[[], anyio.Event] = type(anyio.Event())
        self._checkpoint = _backend_checkpoint()
        for _ in range(self.min_workers):
            self.spawn()

    # ------------------------------------------------------------------ workers
    def spawn(self) -> None:
        assert self._tg is not None
        w = Worker(self._next_worker_id)
        self._next_worker_id += 1
        self.workers[w.id] = w
        self.live[w.id] = w
        self._tg.start_soon(self._worker_main, w, name=f"worker-{w.id}")

    def retire(self, count: int) -> int:
        """Retire up to ``count`` idle workers; returns how many."""
        retired = 0
        while retired < count and self.idle:
            w = self.idle.pop()
            w.retire = True
            del self.workers[w.id]
            if w.waiter is not None:
                w.waiter.set()
            retired += 1
        return retired

    def wake(self, n: int) -> None:
        idle = self.idle
        while n > 0 and idle:
            w = idle.pop()
            if w.waiter is not None:
                w.waiter.set()
                w.waiter = None
            n -= 1

    def running_count(self, type_name: str) -> int:
        """Tasks of ``type_name`` running here now."""
        return sum(1 for w in self.live.values() if w.task is not None and w.task.type == type_name)

    def sample_busy(self) -> None:
        """One sample of the busy count for the scaler's average (taken 4x a second)."""
        self._busy_sum += self.busy
        self._busy_samples += 1

    async def _worker_main(self, w: Worker) -> None:
        try:
            while not w.retire:
                with anyio.CancelScope() as scope:
                    w.scope = scope
                    await self._work(w, scope)
                task = w.task
                if task is not None:  # our scope was cancelled: cancel or timeout
                    self._interrupted(w, task)
        finally:
            task = w.task
            if task is not None and task.status is TaskStatus.RUNNING:
                self.finish(w, task, TaskStatus.CANCELLED, message="cancelled: shutting down")
            self.workers.pop(w.id, None)
            self.live.pop(w.id, None)
            if w in self.idle:
                self.idle.remove(w)

    async def _work(self, w: Worker, scope: anyio.CancelScope) -> None:
        backlog, idle = self._backlog, self.idle
        pop, has_next = backlog.pop, backlog.has_next
        while not w.retire:
            task = None if self.paused else pop()
            if task is None:
                idle.append(w)
                waiter = w.waiter = self._new_event()
                if not self.paused:
                    backlog.idle()
                await waiter.wait()
                # A fresh turn of the loop: its slice starts now. (Timed from the last
                # worker's, it had run out after an idle spell.)
                self._slice_start = time.monotonic()
                continue
            await self._run(w, task)
            if scope.cancel_called:
                return
            now = time.monotonic()
            # No next task: the idle wait above gives the loop its turn. (A checkpoint
            # first cost a loop turn more per task under a light load: issue #16.)
            if now - self._slice_start > SLICE_S / len(self.live) and has_next():
                self._slice_start = now
                await self._checkpoint()
                self._slice_start = time.monotonic()

    # ------------------------------------------------------------------ timeouts
    async def watchdog(self) -> None:
        """Time tasks out: sleep until the earliest deadline, then interrupt the late ones."""
        while True:
            now = time.monotonic()
            nearest = math.inf
            for w in list(self.live.values()):
                if w.task is None:
                    continue
                if w.deadline <= now:
                    w.interrupt("timeout")
                elif w.deadline < nearest:
                    nearest = w.deadline
            # It wakes by itself within a second: a task started meanwhile needs to wake
            # it only if its deadline comes sooner (a short timeout), not for every task.
            wait = min(nearest - now, 1.0)
            self._watch_next = now + wait
            self._watch_wake = anyio.Event()
            with anyio.move_on_after(wait):
                await self._watch_wake.wait()

    # ------------------------------------------------------------------ shutdown
    async def drain(self, grace_s: float) -> None:
        """Let running tasks finish for up to ``grace_s``, interrupt the rest, and leave
        the threads of sync handlers that ignore it (see :data:`ABANDON_AFTER_S`)."""
        if self.busy:
            self._engine.log("info", f"waiting up to {grace_s:g}s for {self.busy} running task(s)")
            self._idle_all = anyio.Event()
            with anyio.move_on_after(grace_s):
                await self._idle_all.wait()
        for w in list(self.live.values()):
            w.interrupt("shutdown")
        stuck = [w for w in self.live.values() if w.thread_scope is not None]
        if not stuck:
            return
        with anyio.move_on_after(ABANDON_AFTER_S):
            while any(w.thread_scope is not None for w in stuck):
                self._idle_all = anyio.Event()
                await self._idle_all.wait()
        for w in stuck:
            scope = w.thread_scope
            if scope is not None and w.task is not None:
                self._engine.log(
                    "warning",
                    f"task {w.task.id}: its sync handler ignored the shutdown for"
                    f" {ABANDON_AFTER_S:g}s; its thread is abandoned",
                )
                scope.cancel()
