"""The dashboard's window on a cluster's tasks (cluster mode only).

With a shared store the engine's registry holds only the tasks this instance runs; the
cluster's tasks are in PostgreSQL. The dashboard keeps a bounded view of them: a fresh
snapshot from the store (at start, after a resync, and every few seconds), patched
between snapshots by the task events the store's change feed publishes on the bus for
every instance's tasks. It answers the same reads as the registry (``newest``,
``active``, ``counts``, ``get``), so the bridge queries either the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from ..core import Task, TaskStatus

VIEW_MAX = 2_000
"""Tasks the view keeps (the oldest final ones leave first)."""


def _seq(task: Task) -> int:
    return task.seq


class SharedTasks:
    def __init__(self, limit: int = VIEW_MAX) -> None:
        self.limit = limit
        self._tasks: dict[str, Task] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def put(self, tasks: Iterable[Task]) -> None:
        """The latest state of these tasks (from events)."""
        mine = self._tasks
        for task in tasks:
            mine[task.id] = task
        if len(mine) > self.limit + self.limit // 4:
            self._trim()

    def replace(self, tasks: Iterable[Task]) -> None:
        """A fresh snapshot: it replaces everything known (a newer event may follow)."""
        self._tasks = {t.id: t for t in tasks}
        self._trim()

    def _trim(self) -> None:
        if len(self._tasks) <= self.limit:
            return
        final = sorted((t for t in self._tasks.values() if t.status.final), key=_seq)
        for task in final[: len(self._tasks) - self.limit]:
            del self._tasks[task.id]

    # ------------------------------------------------------------------ the registry's reads
    def newest(self, *, statuses: frozenset[TaskStatus] | None = None) -> Iterator[Task]:
        pool = sorted(self._tasks.values(), key=_seq, reverse=True)
        if statuses is None:
            return iter(pool)
        return (t for t in pool if t.status in statuses)

    def active_and_final(self) -> Iterable[Task]:
        """Every task of the view, in no particular order."""
        return self._tasks.values()

    def active(self) -> list[Task]:
        return [t for t in self._tasks.values() if not t.status.final]

    @property
    def counts(self) -> Counter[TaskStatus]:
        return Counter(t.status for t in self._tasks.values())
