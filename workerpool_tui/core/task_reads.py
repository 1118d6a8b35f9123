"""Reading tasks wherever they are: this instance's registry first, then the engine's index
(the registry with a local store, PostgreSQL with a shared one) — the part of
:class:`~.engine.Engine` that answers "which tasks", as a mixin.
"""

from __future__ import annotations

from collections.abc import Iterable

from .index import LocalIndex, TaskIndex
from .instance_view import InstanceInfo
from .models import Task, TaskStatus
from .registry import Registry
from .storage import SharedStore

SNAPSHOT_LIMIT = 500
"""Tasks in a snapshot (a WebSocket client's first message, a dashboard's view)."""


class TaskReads:
    """The engine's reads; :class:`~.engine.Engine` sets these attributes."""

    registry: Registry
    index: TaskIndex
    store: SharedStore | None

    def get(self, task_id: str) -> Task | None:
        """A task this instance holds (every task, with a local store), without waiting."""
        return self.registry.get(task_id)

    async def lookup(self, id_or_prefix: str) -> Task:
        """The task with this id or unique prefix (4+ characters), wherever it is;
        ``AmbiguousId`` / ``NotFound`` otherwise. A held task is its live record."""
        task = self.registry.get(id_or_prefix)
        if task is not None:
            return task
        found = await self.index.lookup(id_or_prefix)
        return self.registry.get(found.id) or found

    async def list_tasks(
        self,
        *,
        status: Iterable[TaskStatus] | None = None,
        type_: str | None = None,
        q: str | None = None,
        waiting: str | None = None,
        limit: int = 100,
        offset: int = 0,
        parent: str | None = None,
    ) -> tuple[list[Task], int]:
        """Newest first; ``q`` matches an id prefix, the type or the message; ``waiting``
        is ``time``, ``dependencies`` or ``none`` (pending tasks waiting for that, or
        tasks waiting for nothing); ``parent`` (a full id): the tasks depending on it."""
        statuses = frozenset(status) if status is not None else None
        return await self.index.page(
            statuses=statuses,
            type_=type_,
            q=q,
            limit=limit,
            offset=offset,
            waiting=waiting,
            parent=parent,
        )

    async def snapshot(self, limit: int = SNAPSHOT_LIMIT) -> list[Task]:
        """Every non-final task and the most recent final ones, ``limit`` in all, newest first."""
        return await self.index.snapshot(limit)

    def snapshot_now(self, limit: int = SNAPSHOT_LIMIT) -> list[Task] | None:
        """:meth:`snapshot` without waiting, when the tasks are all here (a local store);
        ``None`` with a shared store."""
        index = self.index
        return index.snapshot_now(limit) if isinstance(index, LocalIndex) else None

    def degraded(self) -> str | None:
        """Why the engine is not fully working (its shared store cannot reach its
        database, say); ``None`` when it is."""
        return None if self.store is None else self.store.degraded()

    async def instances(self) -> list[InstanceInfo]:
        """The instances of the cluster (``[]`` without a shared store)."""
        return [] if self.store is None else await self.store.instances()
