"""Unique tasks (local stores): a second task with a ``unique_key`` is refused while the
first is unfinished, or within its window (``unique_for``, counted from submission).

The keys map to the task that holds them; a key is free again when that task is final
(and its window, if any, has passed). Freed keys are dropped lazily (on the next
submission with that key) and by the janitor. The cluster store enforces the same rule
with a unique partial index instead (no check-then-insert race across instances).
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Task


def holds(task: Task, now: float) -> bool:
    """Whether ``task`` still holds its key at ``now``."""
    until = task.unique_until
    return not task.status.final or (until is not None and now < until)


class UniqueKeys:
    def __init__(self) -> None:
        self._keys: dict[str, Task] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def holder(self, key: str, now: float) -> Task | None:
        """The task holding ``key``, if any."""
        task = self._keys.get(key)
        if task is None:
            return None
        if holds(task, now):
            return task
        del self._keys[key]
        return None

    def take(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            if task.unique_key is not None:
                self._keys[task.unique_key] = task

    def forget(self, tasks: Iterable[Task]) -> None:
        """Free the keys these tasks hold (they were deleted: nothing may point at them)."""
        keys = self._keys
        for task in tasks:
            key = task.unique_key
            if key is not None and keys.get(key) is task:
                del keys[key]

    def sweep(self, now: float) -> int:
        """Drop the keys of tasks that no longer hold them; returns how many."""
        gone = [key for key, task in self._keys.items() if not holds(task, now)]
        for key in gone:
            del self._keys[key]
        return len(gone)
