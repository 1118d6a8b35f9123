"""A bounded priority queue: higher priority first, FIFO among equals.

Synchronous and single-threaded (the engine's event loop owns it). Removal is lazy: a
task that leaves the queue early (cancel) is counted out at once and its heap entry is
skipped when it surfaces; the heap is compacted when stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence

from .models import Task, TaskStatus

_Entry = tuple[int, int, Task]


class PriorityQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[_Entry] = []
        self._depth = 0

    def __len__(self) -> int:
        return self._depth

    @property
    def free(self) -> int:
        return max(0, self.capacity - self._depth)

    def push_many(self, tasks: Sequence[Task], *, force: bool = False) -> None:
        """Enqueue all of ``tasks`` (all pending). The caller checks :attr:`free` first;
        ``force`` admits past capacity (retries of tasks that were already admitted)."""
        if not force and len(tasks) > self.free:
            raise OverflowError("queue full")
        heap = self._heap
        for task in tasks:
            heapq.heappush(heap, (-task.priority, task.seq, task))
        self._depth += len(tasks)

    def pop(self) -> Task | None:
        """The next pending task, or ``None`` when empty."""
        heap = self._heap
        while heap:
            task = heapq.heappop(heap)[2]
            if task.status is TaskStatus.PENDING:
                self._depth -= 1
                return task
        return None

    def discard(self, task: Task) -> None:
        """Count ``task`` out of the queue; the caller has already moved it off ``pending``."""
        self._depth -= 1
        if len(self._heap) > 64 and len(self._heap) > 2 * self._depth:
            self._heap = [e for e in self._heap if e[2].status is TaskStatus.PENDING]
            heapq.heapify(self._heap)

    def __iter__(self) -> Iterator[Task]:
        """Queued tasks in dispatch order (a sorted copy; for snapshots, not the hot path)."""
        live = sorted(e for e in self._heap if e[2].status is TaskStatus.PENDING)
        return (e[2] for e in live)
