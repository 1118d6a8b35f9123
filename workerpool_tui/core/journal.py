"""Where the engine writes its tasks down: the protocol a durable store implements.

The engine calls :meth:`Journal.changed` on every state change (non-blocking; a store
coalesces by task id and writes in batches), awaits :meth:`Journal.commit` before it
acknowledges a submission, and :meth:`Journal.forget` for tasks retention dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from anyio.abc import TaskGroup

from .models import Task
from .supervise import Fatal


class Journal(Protocol):
    durable: bool
    """True when tasks survive a restart (pending tasks are then left pending at shutdown)."""

    async def open(self, tg: TaskGroup, on_fatal: Fatal) -> list[Task]:
        """Start; return the tasks to recover, oldest first. Background work goes into
        ``tg``, which must stay open until :meth:`close` has returned (the engine gives
        the journal a group of its own, which outlives the workers), supervised
        (:mod:`.supervise`): a background job that cannot go on calls ``on_fatal``."""
        ...

    def changed(self, task: Task) -> None: ...

    def forget(self, tasks: Iterable[Task]) -> None: ...

    async def commit(self, *, fail_fast: bool = False, new_only: bool = False) -> None:
        """Return once every change recorded so far is durable; ``fail_fast``: refuse at
        once while the store is known to be failing (submissions do); ``new_only``: the
        new tasks recorded so far suffice (a submission; a journal may wait for more).
        Raise :class:`~.errors.StoreUnavailable` when they could not be written (they are
        retried in the background; a submission then forgets its tasks)."""
        ...

    async def close(self) -> None: ...


class MemoryJournal:
    """Remembers nothing: tasks live only as long as the process."""

    durable = False

    async def open(self, tg: TaskGroup, on_fatal: Fatal) -> list[Task]:
        return []

    def changed(self, task: Task) -> None:
        pass

    def forget(self, tasks: Iterable[Task]) -> None:
        pass

    async def commit(self, *, fail_fast: bool = False, new_only: bool = False) -> None:
        pass

    async def close(self) -> None:
        pass
