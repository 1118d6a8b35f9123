"""Where pending tasks wait, and how a worker gets the next one: the engine's queue seam.

:class:`Backlog` is what the engine asks of it. :class:`LocalBacklog` (memory and SQLite
stores) keeps pending tasks in this process: the bounded priority queue of
:mod:`.queue`, and the tasks waiting out a retry's backoff in a heap with one timer for
the earliest. The cluster store's backlog (``workerpool_tui.store.postgres.backlog``)
keeps them in PostgreSQL and claims them for idle workers.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import anyio

from .models import Task, TaskError, TaskStatus
from .queue import PriorityQueue
from .registry import Registry


class Backlog(Protocol):
    capacity: int
    shared: bool
    """Pending tasks live outside this process (so do other instances' tasks)."""

    def __len__(self) -> int:
        """Runnable tasks waiting here (the queue depth of the stats)."""
        ...

    @property
    def free(self) -> int:
        """How many more tasks may be admitted."""
        ...

    def push_many(self, tasks: Sequence[Task], *, force: bool = False) -> None:
        """Committed new tasks (or recovered ones, with ``force`` past capacity)."""
        ...

    def pop(self) -> Task | None:
        """The next task for a worker, or ``None``; hot path."""
        ...

    def has_next(self) -> bool:
        """Whether :meth:`pop` would find a task now (a skipped stale one aside): a worker
        gives the loop a turn between two tasks only if there is a next one (hot path)."""
        ...

    def discard(self, task: Task) -> None:
        """A pending task left (cancelled); its status is no longer pending."""
        ...

    def idle(self) -> None:
        """A worker went idle (a shared backlog claims work for it)."""
        ...

    def defer(self, task: Task, delay_s: float) -> None:
        """``task`` (pending again, after a failure) becomes runnable in ``delay_s``."""
        ...

    async def run(self) -> None:
        """Its background work, for the engine's life."""
        ...


class LocalBacklog:
    """Pending tasks in this process: a bounded priority queue, and a timer for retries."""

    shared = False

    def __init__(self, capacity: int, wake_workers: Callable[[int], None]) -> None:
        self.queue = PriorityQueue(capacity)
        self.capacity = capacity
        self._wake_workers = wake_workers
        self._retry_heap: list[tuple[float, int, Task]] = []
        self._retry_wake: anyio.Event | None = None
        # The hot path calls the queue's own methods.
        self.pop = self.queue.pop
        self.push_many = self.queue.push_many

    def __len__(self) -> int:
        return len(self.queue)

    def has_next(self) -> bool:
        return len(self.queue) > 0

    @property
    def free(self) -> int:
        return self.queue.free

    def discard(self, task: Task) -> None:
        # A task waiting out a retry backoff is not in the queue; the timer skips it.
        if not any(entry[2] is task for entry in self._retry_heap):
            self.queue.discard(task)

    def idle(self) -> None:
        pass

    def defer(self, task: Task, delay_s: float) -> None:
        """Back in the queue after ``delay_s``, even when the queue is full (it was
        admitted once already)."""
        heapq.heappush(self._retry_heap, (time.monotonic() + delay_s, task.seq, task))
        if self._retry_wake is not None and self._retry_heap[0][2] is task:
            self._retry_wake.set()

    @property
    def deferred(self) -> int:
        return len(self._retry_heap)

    async def run(self) -> None:
        """The retry timer: sleeps until the earliest retry is due."""
        heap = self._retry_heap
        while True:
            now = time.monotonic()
            due: list[Task] = []
            while heap and heap[0][0] <= now:
                task = heapq.heappop(heap)[2]
                if task.status is TaskStatus.PENDING:
                    due.append(task)
            if due:
                self.queue.push_many(due, force=True)
                self._wake_workers(len(due))
            self._retry_wake = anyio.Event()
            with anyio.move_on_after(heap[0][0] - now if heap else 1.0):
                await self._retry_wake.wait()


def recover(
    tasks: Sequence[Task],
    *,
    registry: Registry,
    backlog: Backlog,
    changed: Callable[[Task], None],
    now: float,
    requeue_running: bool,
    hold: Callable[[list[Task]], list[Task]] | None = None,
) -> int:
    """Tasks a local store loaded at start: history stays history, pending ones go back in
    line (past the capacity: they were admitted once), and those that were running when
    the process stopped are re-queued or failed. Returns how many were queued."""
    requeue: list[Task] = []
    for task in tasks:
        if task.status is TaskStatus.RUNNING:
            if requeue_running:
                task.status = TaskStatus.PENDING
                task.progress = 0.0
                task.message = "re-queued after an interrupted run"
            else:
                task.status = TaskStatus.FAILED
                task.finished_at = now
                task.error = TaskError("interrupted", "the process stopped while this task ran")
                task.message = f"{task.error.type}: {task.error.message}"
            changed(task)
        registry.add(task)
        if task.status is TaskStatus.PENDING:
            requeue.append(task)
    registry.order_finished()
    if hold is not None:  # those due later or waiting for parents wait apart
        requeue = hold(requeue)
    if requeue:
        backlog.push_many(requeue, force=True)
    return len(requeue)
