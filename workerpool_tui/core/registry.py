"""The task registry: every tracked task by id, counts per status, retention.

Designed for 100,000 tracked tasks: lookups are dict hits, counts are kept incrementally,
final tasks sit in finish-order dicts so cleanup and eviction pop from the front, and a
listing walks newest first and stops as soon as it has its page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from .models import FINAL_STATUSES, Task, TaskStatus

_PENDING, _COMPLETED, _FAILED = TaskStatus.PENDING, TaskStatus.COMPLETED, TaskStatus.FAILED


class Registry:
    def __init__(self, max_tracked: int) -> None:
        self.max_tracked = max_tracked
        self._tasks: dict[str, Task] = {}
        """All tracked tasks in submission order (oldest first)."""
        self._active: dict[str, Task] = {}
        """Pending and running tasks."""
        self._finished: dict[str, Task] = {}
        """Completed and cancelled tasks, in finish order."""
        self._failed: dict[str, Task] = {}
        """Failed tasks, in finish order (kept longer: ``task.keep_failed_for``)."""
        self.counts: dict[TaskStatus, int] = dict.fromkeys(TaskStatus, 0)
        self.evicted = 0
        self._children: dict[str, dict[str, Task]] = {}
        """Parent id -> its tracked children, in submission order (tasks with
        ``depends_on`` only: "children of X" is a dict hit, never a walk of every task)."""

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._tasks

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def add(self, task: Task) -> None:
        """Track a new task (any status: recovered history arrives already final)."""
        self._tasks[task.id] = task
        self.counts[task.status] += 1
        if task.depends_on:
            self._link(task)
        if task.status in FINAL_STATUSES:
            (self._failed if task.status is TaskStatus.FAILED else self._finished)[task.id] = task
        else:
            self._active[task.id] = task

    def add_pending(self, tasks: list[Task]) -> None:
        """Track new pending tasks (a submission)."""
        all_, active = self._tasks, self._active
        for task in tasks:
            all_[task.id] = task
            active[task.id] = task
            if task.depends_on:
                self._link(task)
        self.counts[_PENDING] += len(tasks)

    def _link(self, task: Task) -> None:
        children = self._children
        for parent_id in task.depends_on or ():
            children.setdefault(parent_id, {})[task.id] = task

    def _unlink(self, task: Task) -> None:
        """``task`` is no longer tracked: out of its parents' lists; its own list goes."""
        children = self._children
        if children:
            children.pop(task.id, None)
            for parent_id in task.depends_on or ():
                kids = children.get(parent_id)
                if kids is not None:
                    kids.pop(task.id, None)
                    if not kids:
                        del children[parent_id]

    def children_of(self, task_id: str) -> list[Task]:
        """The tracked tasks that depend on ``task_id``, oldest first."""
        kids = self._children.get(task_id)
        return list(kids.values()) if kids else []

    def moved(self, task: Task, old: TaskStatus) -> None:
        """Account for ``task`` having moved from ``old`` to its current status."""
        counts = self.counts
        counts[old] -= 1
        new = task.status
        counts[new] += 1
        if new is _COMPLETED:  # the common case first
            del self._active[task.id]
            self._finished[task.id] = task
        elif new in FINAL_STATUSES:
            del self._active[task.id]
            (self._failed if new is _FAILED else self._finished)[task.id] = task

    def order_finished(self) -> None:
        """Put the final tasks back in finish order (recovered history arrives by seq), so
        that cleanup and eviction keep popping the oldest-finished from the front."""
        for name in ("_finished", "_failed"):
            index: dict[str, Task] = getattr(self, name)
            ordered = sorted(index.values(), key=_finished_at)
            setattr(self, name, {t.id: t for t in ordered})

    def discard(self, task: Task) -> None:
        """Stop tracking ``task``, whatever its status (a cluster instance handing a task
        back to the shared store)."""
        if self._tasks.pop(task.id, None) is None:
            return
        self.counts[task.status] -= 1
        self._unlink(task)
        for index in (self._active, self._finished, self._failed):
            index.pop(task.id, None)

    def cleanup(self, now: float, keep_done_s: float, keep_failed_s: float) -> list[Task]:
        """Drop final tasks older than their retention; oldest-finished first."""
        dropped: list[Task] = []
        for index, keep in ((self._finished, keep_done_s), (self._failed, keep_failed_s)):
            old: list[Task] = []
            horizon = now - keep
            for task in index.values():  # one walk from the front (see _drop_front)
                if (task.finished_at or 0.0) > horizon:
                    break
                old.append(task)
            self._drop_front(index, old)
            dropped += old
        return dropped

    def evict_overflow(self) -> list[Task]:
        """Drop the oldest final tasks while more than ``max_tracked`` are tracked.

        Successes go before failures (failures are kept longer); only final tasks are ever
        evicted, which config validation guarantees is enough.
        """
        dropped: list[Task] = []
        excess = len(self._tasks) - self.max_tracked
        for index in (self._finished, self._failed):
            if excess <= 0:
                break
            old = list(islice(index.values(), excess))
            self._drop_front(index, old)
            dropped += old
            excess -= len(old)
        self.evicted += len(dropped)
        return dropped

    def _drop_front(self, index: dict[str, Task], tasks: list[Task]) -> None:
        """Drop ``tasks``, the oldest of ``index``, taken in ONE walk from its front.

        A dict popped from the front keeps the popped slots until it is next resized, and
        every ``next(iter(index))`` walks over them again: popping one at a time cost
        ~10 us a task at 100,000 tracked (quadratic), 36 ms for a batch of 1,000 — the
        loop stalls of issue #10. One walk, then deletions by key: ~0.1 us a task."""
        tasks_, counts, children = self._tasks, self.counts, self._children
        for task in tasks:
            del index[task.id]
            del tasks_[task.id]
            counts[task.status] -= 1
            if children:  # out of the parent -> children index (issue #12)
                self._unlink(task)

    def active(self) -> Iterable[Task]:
        return self._active.values()

    def newest(
        self,
        *,
        statuses: frozenset[TaskStatus] | None = None,
        type_: str | None = None,
        q: str | None = None,
        pred: Callable[[Task], bool] | None = None,
        parent: str | None = None,
    ) -> Iterator[Task]:
        """Tracked tasks newest first (by submission), filtered (see :func:`matches`);
        ``parent``: only the children of that task (from the index, not a walk)."""
        if parent is not None:
            pool: Iterable[Task] = reversed(self.children_of(parent))
        elif statuses is not None and statuses <= {TaskStatus.PENDING, TaskStatus.RUNNING}:
            pool = sorted(self._active.values(), key=_seq, reverse=True)
        else:
            pool = reversed(self._tasks.values())
        preds: list[Callable[[Task], bool]] = []
        if statuses is not None:
            preds.append(lambda t: t.status in statuses)
        if type_ is not None:
            preds.append(lambda t: t.type == type_)
        if q:
            needle = q.lower()
            preds.append(lambda t: matches(t, needle))
        if pred is not None:
            preds.append(pred)
        if not preds:
            return iter(pool)
        if len(preds) == 1:
            return filter(preds[0], pool)
        return (t for t in pool if all(p(t) for p in preds))

    def page(
        self,
        *,
        statuses: frozenset[TaskStatus] | None = None,
        type_: str | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
        pred: Callable[[Task], bool] | None = None,
        parent: str | None = None,
    ) -> tuple[list[Task], int]:
        """One page of :meth:`newest` and the total number of matches."""
        if type_ is None and not q and pred is None and parent is None:
            total = len(self._tasks) if statuses is None else sum(self.counts[s] for s in statuses)
            items = list(islice(self.newest(statuses=statuses), offset, offset + limit))
            return items, total
        found = list(self.newest(statuses=statuses, type_=type_, q=q, pred=pred, parent=parent))
        return found[offset : offset + limit], len(found)

    def by_prefix(self, prefix: str, limit: int) -> list[Task]:
        """Up to ``limit`` tasks whose id starts with ``prefix``, oldest first."""
        found: list[Task] = []
        for task_id, task in self._tasks.items():
            if task_id.startswith(prefix):
                found.append(task)
                if len(found) >= limit:
                    break
        return found


def matches(task: Task, needle: str) -> bool:
    """The ``q`` of a listing (lower case): a prefix of the id, or part of the type or of
    the latest message (case-insensitive)."""
    return (
        task.id.startswith(needle)
        or needle in task.type.lower()
        or (task.message is not None and needle in task.message.lower())
    )


def _seq(task: Task) -> int:
    return task.seq


def _finished_at(task: Task) -> float:
    return task.finished_at or 0.0
