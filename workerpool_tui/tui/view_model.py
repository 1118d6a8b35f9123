"""The values the dashboard reads, whichever source feeds it (see :mod:`.source`).

Queries, sorts and "what changed" are plain values here, and :func:`query_tasks` answers a
:class:`Query` over any task view that reads like the engine's registry (the registry
itself, or a bounded :class:`~.shared_tasks.SharedTasks` view: a cluster's tasks, or a
remote server's). Nothing here imports Textual or reaches the engine.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import msgspec

from ..core import Task, TaskSpec, TaskStatus
from ..core.index import TaskCounts, waiting_filter
from ..core.registry import Registry
from .shared_tasks import SharedTasks


class ServerStatus(msgspec.Struct, frozen=True):
    """What the stats bar says about the API: the side-car's, or the attached server's."""

    address: str | None = None
    ws_clients: int = 0
    error: str | None = None


class TypeInfo(msgspec.Struct, frozen=True):
    name: str
    description: str
    payload_schema: dict[str, Any] | None
    limits: str = ""
    """Its isolation and gates as they are now (``"process · running 1/4 · rate 10/s"``)."""
    priority: int | None = 0
    timeout_s: float | None = 300.0
    max_retries: int | None = 0
    """What a submission that leaves them out gets: ``[task.types.NAME]``, else ``[task]``
    (``None``: the attached server's own default, which its API does not state)."""


class SortSpec(msgspec.Struct, frozen=True):
    column: str = "age"
    """A column key of the task table; ``age`` is submission order."""
    descending: bool = True


class Query(msgspec.Struct, frozen=True):
    """Which tasks the table shows."""

    statuses: frozenset[TaskStatus] | None = None
    search: str = ""
    sort: SortSpec = SortSpec()
    limit: int = 200
    offset: int = 0
    """Rows of the filtered, sorted list before the first one shown."""
    waiting: str | None = None
    """``time``, ``dependencies`` or ``none``: the API's ``waiting=`` filter (the
    Scheduled tab is ``time``)."""


class Changes(msgspec.Struct):
    """What changed since the previous ``take()`` of the source."""

    task_ids: set[str] = msgspec.field(default_factory=set)
    membership: bool = False
    """Tasks were created or changed status: the set of rows shown may differ."""
    rebuild: bool = False
    """Too much changed (or the stream resynced): redraw from scratch."""
    pool: bool = False
    logs: list[tuple[str, str]] = msgspec.field(default_factory=list)
    events: int = 0


class SubmitRequest(msgspec.Struct, frozen=True):
    """A validated submission from the form: ``count`` copies of one spec."""

    spec: TaskSpec
    count: int = 1


_LIFECYCLE = {status: i for i, status in enumerate(TaskStatus)}
"""Status sorts in lifecycle order: pending, running, completed, failed, cancelled."""
_RUNNING = frozenset({TaskStatus.RUNNING})
SORT_COLUMNS = ("age", "id", "type", "status", "progress", "priority", "worker")


def _sort_key(column: str) -> Callable[[Task], Any]:
    now_free: dict[str, Callable[[Task], Any]] = {
        "id": lambda t: t.id,
        "type": lambda t: (t.type, t.seq),
        "status": lambda t: (_LIFECYCLE[t.status], t.seq),
        "progress": lambda t: (t.progress, t.seq),
        "priority": lambda t: (t.priority, t.seq),
        "worker": lambda t: (t.worker if t.worker is not None else -1, t.seq),
        "age": lambda t: t.seq,
    }
    return now_free.get(column, now_free["age"])


def _by_seq(task: Task) -> int:
    return task.seq


def matches_search(task: Task, needle: str) -> bool:
    """``needle`` (lower case) in the id, the type or the latest message."""
    return (
        needle in task.id
        or needle in task.type.lower()
        or (task.message is not None and needle in task.message.lower())
    )


def short_id(task_id: str) -> str:
    return task_id[:8]


def query_tasks(
    view: Registry | SharedTasks, q: Query, counts: TaskCounts | None = None
) -> tuple[list[Task], int]:
    """Rows ``offset`` to ``offset + limit`` of the filtered, sorted list (the table is
    a window over all of it), and how many tasks match in all.

    ``counts``: the whole population's counts when ``view`` holds only part of it (a
    cluster's or a remote server's tasks); the unfiltered newest-first total is theirs.
    Newest-first without a search walks the view from its newest end and stops after
    ``offset + limit``; other sorts take the top ``offset + limit`` with a heap.
    """
    if q.waiting is not None:
        return _query_waiting(view, q)
    lo, hi = q.offset, q.offset + q.limit
    needle = q.search.strip().lower()
    if needle:
        pool: Iterable[Task] = (
            t for t in view.newest(statuses=q.statuses) if matches_search(t, needle)
        )
        found = list(pool)
        if q.sort.column == "age" and q.sort.descending:
            return found[lo:hi], len(found)
        total = len(found)
    elif q.sort.column == "age" and q.sort.descending:
        statuses = q.statuses
        if statuses == _RUNNING:
            # Running only (at most task.max_concurrent_tasks of them): one pass over
            # the active tasks, instead of sorting them all (10,000 queued under load)
            # and then walking past every pending one. Measured with 10,000 pending:
            # 2.1 ms -> 0.5 ms. (Pending tasks are many: the registry's walk is faster.)
            running = [t for t in view.active() if t.status in statuses]
            rows = heapq.nlargest(hi, running, key=_by_seq)[lo:]
        else:
            rows = list(islice(view.newest(statuses=statuses), lo, hi))
        if counts is not None:  # the population's counts, not the view's
            if statuses is None:
                return rows, counts.total
            return rows, sum(getattr(counts, s.value) for s in statuses)
        have = view.counts
        total = len(view) if statuses is None else sum(have[s] for s in statuses)
        return rows, total
    else:
        found = list(view.newest(statuses=q.statuses))
        total = len(found)
    key = _sort_key(q.sort.column)
    pick = heapq.nlargest if q.sort.descending else heapq.nsmallest
    return pick(hi, found, key=key)[lo:], total


def _query_waiting(view: Registry | SharedTasks, q: Query) -> tuple[list[Task], int]:
    """The ``waiting`` filters: one pass over the unfinished tasks only for ``time``
    and ``dependencies`` (a million final ones are never walked); the top
    ``offset + limit`` taken with a heap."""
    lo, hi = q.offset, q.offset + q.limit
    pred = waiting_filter(q.waiting)
    assert pred is not None
    needle = q.search.strip().lower()
    statuses = q.statuses
    # time and dependencies wait only among pending tasks; none takes the final too
    pool = view.active() if q.waiting != "none" else view.newest()
    found = [
        t
        for t in pool
        if (statuses is None or t.status in statuses)
        and pred(t)
        and (not needle or matches_search(t, needle))
    ]
    key = _sort_key(q.sort.column)
    pick = heapq.nlargest if q.sort.descending else heapq.nsmallest
    return pick(hi, found, key=key)[lo:], len(found)
