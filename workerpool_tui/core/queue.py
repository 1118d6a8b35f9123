"""A bounded priority queue: higher priority first, FIFO among equals.

Synchronous and single-threaded (the engine's event loop owns it). One FIFO bucket per
priority value plus the sorted list of priorities in use: push and pop are O(1) for the
usual handful of priorities (a heap of tuples costs about twice as much per task).
Removal is lazy: a task that leaves early (cancel) is counted out at once and skipped
when it surfaces; buckets are compacted when stale entries outnumber live ones.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator, Sequence

from .models import Task, TaskStatus

_PENDING = TaskStatus.PENDING


class PriorityQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buckets: dict[int, deque[Task]] = {}
        self._prios: list[int] = []
        """Priorities with a bucket, ascending; the highest is last."""
        self._depth = 0
        self._stale = 0

    def __len__(self) -> int:
        return self._depth

    def held(self) -> int:
        """Entries held, stale ones (cancelled, not yet skipped) included."""
        return sum(len(b) for b in self._buckets.values())

    @property
    def free(self) -> int:
        return max(0, self.capacity - self._depth)

    def push_many(self, tasks: Sequence[Task], *, force: bool = False) -> None:
        """Enqueue all of ``tasks`` (all pending), in order. The caller checks :attr:`free`
        first; ``force`` admits past capacity (retries of tasks already admitted once)."""
        if not force and len(tasks) > self.free:
            raise OverflowError("queue full")
        buckets = self._buckets
        for task in tasks:
            bucket = buckets.get(task.priority)
            if bucket is None:
                bucket = buckets[task.priority] = deque()
                bisect.insort(self._prios, task.priority)
            bucket.append(task)
        self._depth += len(tasks)

    def pop(self) -> Task | None:
        """The next pending task, or ``None`` when empty."""
        prios, buckets = self._prios, self._buckets
        while prios:
            bucket = buckets[prios[-1]]
            while bucket:
                task = bucket.popleft()
                if task.status is _PENDING:
                    self._depth -= 1
                    return task
                self._stale -= 1
            del buckets[prios.pop()]
        return None

    def discard(self, task: Task) -> None:
        """Count ``task`` out of the queue; the caller has already moved it off ``pending``."""
        self._depth -= 1
        self._stale += 1
        if self._stale > 64 and self._stale > self._depth:
            for prio in list(self._prios):
                live = deque(t for t in self._buckets[prio] if t.status is _PENDING)
                if live:
                    self._buckets[prio] = live
                else:
                    del self._buckets[prio]
                    self._prios.remove(prio)
            self._stale = 0

    def __iter__(self) -> Iterator[Task]:
        """Queued tasks in dispatch order (a copy; for snapshots, not the hot path)."""
        return iter(
            [t for p in reversed(self._prios) for t in self._buckets[p] if t.status is _PENDING]
        )
