"""Pending tasks that may not run yet: those due at a later time, and those whose parents
have not completed (the local stores; the cluster store keeps both in its table).

A delayed task (``run_at`` in the future) waits in one heap ordered by due time, with one
timer for the earliest (no polling per task); it is not in the queue, so it does not count
against ``queue_capacity`` until it is due, and then enters the queue even when the queue
is full (it was admitted once). When it becomes due its ``run_at`` is cleared, as the
cluster store does when it makes a task runnable.

A task with ``depends_on`` counts its unfinished parents in :attr:`Task.blocked`; each
parent's completion counts one down and the last one releases it (to the heap if it is
also delayed). A parent that fails or is cancelled cancels its children at once with
``error.type = "dependency_failed"`` naming it, and theirs after them (one loop over a
work list, not recursion: a chain may be 10,000 long). Cycles cannot happen by
construction: a parent must exist before its child (in a batch, ``"$N"`` may only name
an earlier task of the same batch).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import anyio

from .clock import Clock
from .errors import Blocked
from .models import Task, TaskError, TaskStatus

MAX_SLEEP_S = 30.0
"""The timer wakes at least this often: a wall clock that jumped is noticed."""

_PENDING = TaskStatus.PENDING
_COMPLETED = TaskStatus.COMPLETED


class Waiting:
    """The local stores' waiting room. ``release`` puts tasks that became runnable in the
    queue (past its capacity) and wakes workers; ``cancel`` cancels a pending task with an
    error (the engine's own cancel path, which calls :meth:`discard` and
    :meth:`parent_final` in turn)."""

    def __init__(
        self,
        clock: Clock,
        release: Callable[[list[Task]], None],
        cancel: Callable[[Task, TaskError], None],
    ) -> None:
        self._clock = clock
        self._release = release
        self._cancel = cancel
        self._heap: list[tuple[float, int, Task]] = []
        self.children: dict[str, list[Task]] = {}
        """Parent id -> its waiting children."""
        self.scheduled = 0
        """Pending tasks waiting for a time."""
        self.blocked = 0
        """Pending tasks waiting for parents."""
        self._wake: anyio.Event | None = None
        self._doomed: deque[tuple[Task, Task]] = deque()
        self._cascading = False
        watch = getattr(clock, "watch", None)
        if watch is not None:  # a fake clock: advancing it wakes the timer
            watch(self.poke)

    # ------------------------------------------------------------------ admission
    def admit(self, tasks: Sequence[Task], lookup: Callable[[str], Task | None]) -> list[Task]:
        """New (or recovered) pending tasks: returns those runnable now; the others wait
        here. Children of a parent that already failed are cancelled once all of
        ``tasks`` are placed (``lookup`` finds a parent by id)."""
        now = self._clock.now()
        runnable: list[Task] = []
        for task in tasks:
            if task.status is not _PENDING:
                continue
            if task.depends_on:
                unfinished = 0
                for parent_id in task.depends_on:
                    parent = lookup(parent_id)
                    if parent is None or parent.status is _COMPLETED:
                        continue  # gone from memory: it was final, and only completed
                        # parents leave children pending (see recovery in the module doc)
                    if parent.status.final:
                        self._doomed.append((parent, task))
                        continue
                    unfinished += 1
                    self.children.setdefault(parent_id, []).append(task)
                task.blocked = unfinished
                if unfinished:
                    self.blocked += 1
                    continue
            if task.run_at is not None and task.run_at > now:
                self._hold(task)
            else:
                task.run_at = None
                runnable.append(task)
        return runnable

    def settle(self) -> None:
        """Cancel the children whose parent had already failed when they arrived."""
        self._cascade()

    def _hold(self, task: Task) -> None:
        assert task.run_at is not None
        heap = self._heap
        heapq.heappush(heap, (task.run_at, task.seq, task))
        self.scheduled += 1
        if heap[0][2] is task and self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ leaving
    def waits(self, task: Task) -> bool:
        return task.status is _PENDING and (task.blocked > 0 or task.run_at is not None)

    def discard(self, task: Task) -> bool:
        """``task`` left ``pending`` (cancelled); True if it waited here (then it is not in
        the queue). Its heap entry is skipped when it surfaces."""
        if task.blocked > 0:
            task.blocked = 0
            self.blocked -= 1
            return True
        if task.run_at is not None:
            task.run_at = None
            self.scheduled -= 1
            return True
        return False

    def run_now(self, task: Task) -> bool:
        """Skip the wait for a time (``POST /tasks/{id}/run``); False if it was not
        waiting for one. ``Blocked`` for a task waiting for parents."""
        if task.status is not _PENDING:
            return False
        if task.blocked > 0:
            raise Blocked(f"task {task.id} waits for its parents; only a time can be skipped")
        if task.run_at is None:
            return False
        task.run_at = None
        self.scheduled -= 1
        self._release([task])
        return True

    def parent_final(self, parent: Task) -> None:
        """``parent`` became final: release or cancel its waiting children."""
        kids = self.children.pop(parent.id, None)
        if not kids:
            return
        if parent.status is _COMPLETED:
            ready: list[Task] = []
            for kid in kids:
                if kid.status is _PENDING and kid.blocked > 0:
                    kid.blocked -= 1
                    if kid.blocked == 0:
                        self.blocked -= 1
                        ready.append(kid)
            self._start(ready)
            return
        self._doomed.extend((parent, kid) for kid in kids)
        self._cascade()

    def _cascade(self) -> None:
        if self._cascading:  # an outer call goes on with the work list
            return
        self._cascading = True
        try:
            doomed = self._doomed
            while doomed:
                parent, kid = doomed.popleft()
                if kid.status is not _PENDING:
                    continue
                error = TaskError(
                    "dependency_failed", f"parent {parent.id} ended {parent.status.value}"
                )
                self._cancel(kid, error)  # -> discard, then parent_final(kid)
        finally:
            self._cascading = False

    def _start(self, tasks: Iterable[Task]) -> None:
        now = self._clock.now()
        runnable = []
        for task in tasks:
            if task.run_at is not None and task.run_at > now:
                self._hold(task)
            else:
                task.run_at = None
                runnable.append(task)
        if runnable:
            self._release(runnable)

    # ------------------------------------------------------------------ the timer
    def poke(self) -> None:
        """Look at the heap again (the clock moved)."""
        if self._wake is not None:
            self._wake.set()

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def release_due(self) -> int:
        """Move every task whose time has come to the queue; returns how many."""
        heap = self._heap
        now = self._clock.now()
        due: list[Task] = []
        while heap and heap[0][0] <= now:
            run_at, _, task = heapq.heappop(heap)
            if task.status is _PENDING and task.run_at == run_at and task.blocked == 0:
                task.run_at = None
                due.append(task)
        if due:
            self.scheduled -= len(due)
            self._release(due)
        return len(due)

    async def run(self) -> None:
        """One timer for the earliest due task."""
        while True:
            self.release_due()
            self._wake = anyio.Event()
            due = self.next_due()
            delay = MAX_SLEEP_S if due is None else min(MAX_SLEEP_S, due - self._clock.now())
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._wake.wait()
