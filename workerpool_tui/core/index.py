"""How the engine reads tasks: lookups, listings, snapshots and counts.

:class:`TaskIndex` is what the engine asks. :class:`LocalIndex` answers from the
registry, which holds every task of a single instance (memory and SQLite stores): its
calls never wait. The cluster store answers with queries (its instances hold only the
tasks they run), so the reads are ``async`` for everyone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import msgspec

from .errors import AmbiguousId, InvalidRequest, NotFound
from .models import FINAL_STATUSES, Task, TaskStatus
from .registry import Registry

if TYPE_CHECKING:
    from .waiting import Waiting

_PENDING = TaskStatus.PENDING

MIN_ID_PREFIX = 4
"""The shortest id prefix a lookup accepts."""
AMBIGUOUS_CANDIDATES = 10


class TaskCounts(msgspec.Struct, frozen=True):
    """Tasks by status; ``pending`` counts the runnable ones only, ``scheduled`` (waiting
    for a time, a retry's backoff included in the cluster) and ``blocked`` (waiting for
    parents) the other pending ones."""

    total: int
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int
    scheduled: int = 0
    blocked: int = 0


class TaskIndex(Protocol):
    async def lookup(self, id_or_prefix: str) -> Task:
        """The task with this id or, for :data:`MIN_ID_PREFIX` characters or more, the
        one task whose id starts with it; ``AmbiguousId`` (with candidates) when several
        do, ``NotFound`` when none does."""
        ...

    async def page(
        self,
        *,
        statuses: frozenset[TaskStatus] | None,
        type_: str | None,
        q: str | None,
        limit: int,
        offset: int,
        waiting: str | None = None,
        parent: str | None = None,
    ) -> tuple[list[Task], int]:
        """Newest first, filtered; and the number of matches. ``waiting``: ``time``,
        ``dependencies`` or ``none`` (see :func:`waiting_filter`); ``parent``: the tasks
        that depend on that id (its children), found through an index."""
        ...

    async def snapshot(self, limit: int) -> list[Task]:
        """Every unfinished task and the most recent final ones, ``limit`` in all, newest
        first."""
        ...

    def counts(self) -> TaskCounts:
        """Tasks by status (the cluster store's are at most a second old)."""
        ...


def pick_by_prefix(id_or_prefix: str, found: list[Task]) -> Task:
    """The one task of ``found`` (a prefix lookup), or the refusal that fits."""
    if len(found) == 1:
        return found[0]
    if found:
        ids = [t.id for t in found[:AMBIGUOUS_CANDIDATES]]
        more = " and more" if len(found) > AMBIGUOUS_CANDIDATES else ""
        raise AmbiguousId(
            f"id prefix {id_or_prefix!r} matches several tasks: {', '.join(ids)}{more}",
            candidates=ids,
        )
    raise NotFound(f"no task with id {id_or_prefix!r}")


def waiting_filter(waiting: str | None) -> Callable[[Task], bool] | None:
    """``time``: pending tasks due later; ``dependencies``: pending tasks whose parents
    have not all completed; ``none``: every other task."""
    if waiting is None:
        return None
    if waiting == "time":
        return lambda t: t.status is _PENDING and t.blocked == 0 and t.run_at is not None
    if waiting == "dependencies":
        return lambda t: t.status is _PENDING and t.blocked > 0
    if waiting == "none":
        return lambda t: t.status is not _PENDING or (t.blocked == 0 and t.run_at is None)
    raise InvalidRequest(f"waiting: one of time, dependencies, none; got {waiting!r}")


class LocalIndex:
    """Reads from the registry (every task of this instance)."""

    def __init__(self, registry: Registry, waiting: Waiting | None = None) -> None:
        self.registry = registry
        self.waiting = waiting

    def lookup_now(self, id_or_prefix: str) -> Task:
        task = self.registry.get(id_or_prefix)
        if task is not None:
            return task
        if len(id_or_prefix) < MIN_ID_PREFIX:
            raise NotFound(f"no task with id {id_or_prefix!r}")
        found = self.registry.by_prefix(id_or_prefix, AMBIGUOUS_CANDIDATES + 1)
        return pick_by_prefix(id_or_prefix, found)

    async def lookup(self, id_or_prefix: str) -> Task:
        return self.lookup_now(id_or_prefix)

    async def page(
        self,
        *,
        statuses: frozenset[TaskStatus] | None,
        type_: str | None,
        q: str | None,
        limit: int,
        offset: int,
        waiting: str | None = None,
        parent: str | None = None,
    ) -> tuple[list[Task], int]:
        return self.registry.page(
            statuses=statuses,
            type_=type_,
            q=q,
            limit=limit,
            offset=offset,
            pred=waiting_filter(waiting),
            parent=parent,
        )

    async def snapshot(self, limit: int) -> list[Task]:
        return self.snapshot_now(limit)

    def snapshot_now(self, limit: int) -> list[Task]:
        active = sorted(self.registry.active(), key=lambda t: t.seq, reverse=True)[:limit]
        room = limit - len(active)
        final: list[Task] = []
        if room > 0:
            for task in self.registry.newest():
                if task.status in FINAL_STATUSES:
                    final.append(task)
                    if len(final) >= room:
                        break
        return sorted(active + final, key=lambda t: t.seq, reverse=True)

    def counts(self) -> TaskCounts:
        counts = self.registry.counts
        w = self.waiting
        scheduled, blocked = (w.scheduled, w.blocked) if w is not None else (0, 0)
        return TaskCounts(
            total=len(self.registry),
            pending=counts[TaskStatus.PENDING] - scheduled - blocked,
            scheduled=scheduled,
            blocked=blocked,
            running=counts[TaskStatus.RUNNING],
            completed=counts[TaskStatus.COMPLETED],
            failed=counts[TaskStatus.FAILED],
            cancelled=counts[TaskStatus.CANCELLED],
        )
