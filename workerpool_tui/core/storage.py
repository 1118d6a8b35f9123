"""What a shared store (the cluster) gives the engine, besides its journal.

The local stores (memory, SQLite) are a :class:`~.journal.Journal` only: the engine keeps
pending tasks in a :class:`~.backlog.LocalBacklog` and reads from its registry. A shared
store keeps every task of the cluster in one database: it brings its own backlog and
index, runs background work (claiming, listening, heartbeats), cancels tasks that run on
other instances, and lists the instances. The engine knows it only through this protocol
(``workerpool_tui.store.postgres`` implements it).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .backlog import Backlog
from .bus import BulkEvent
from .index import TaskIndex
from .instance_view import InstanceInfo
from .journal import Journal
from .models import Task, TaskStatus

if TYPE_CHECKING:
    from .engine import Engine


class PendingCancel(NamedTuple):
    """What :meth:`SharedStore.cancel_pending` did to a chunk of a bulk cancel."""

    cancelled: list[str]
    """The ids it cancelled."""
    others: dict[str, TaskStatus]
    """The others by id, with the status it found them in (claimed since they were
    matched: running; ended: final). An id the store does not have is left out."""


class SharedStore(Protocol):
    name: str
    """This instance's name in the cluster."""

    @property
    def journal(self) -> Journal:
        """Where the engine writes its changes (read-only here, so that a store may hold a
        more specific journal)."""
        ...

    def bind(self, engine: Engine) -> tuple[Backlog, TaskIndex]:
        """Make the backlog and the index, wired to the engine's workers and bus."""
        ...

    async def run(self) -> None:
        """Background work for the engine's life (supervised by the engine)."""
        ...

    async def cancel(self, task: Task, wait_s: float) -> Task:
        """Cancel a task this instance does not run (see the store's docs for when it
        returns)."""
        ...

    async def cancel_pending(self, ids: list[str]) -> PendingCancel:
        """Cancel those of these tasks that are pending and claimed by no instance, as
        a single cancel does, in one statement (a chunk of a bulk cancel); their waiting
        children are cancelled with them."""
        ...

    async def delete_final(self, ids: list[str]) -> int:
        """Delete the final ones of these tasks (a bulk delete); how many were deleted."""
        ...

    def bulk(self) -> AbstractContextManager[None]:
        """While entered, the store's writes made by the calling task (a bulk action) do
        not announce their tasks one by one to the other instances; :meth:`bulk_done`
        then sums them up."""
        ...

    async def bulk_done(self, event: BulkEvent) -> None:
        """Tell the other instances about a bulk action in one message (they publish it
        on their bus, and their followers take a fresh snapshot); called before the
        acting instance publishes it on its own bus."""
        ...

    keys: Any
    """Unique keys, held by the database (``claim(key, task_id, until)`` -> holder id or
    ``None``; ``release(key, task_id)``)."""

    async def results(self, ids: list[str]) -> dict[str, Any]:
        """The results of these tasks by id, in one query (``None`` for a task without
        one; an id the store does not have is left out)."""
        ...

    async def run_now(self, task: Task) -> Task:
        """Make a task waiting for a time runnable now (any instance may claim it)."""
        ...

    async def retention(self) -> int:
        """Apply the retention rules to the whole cluster (one instance at a time)."""
        ...

    async def stop(self) -> None:
        """Give back what this instance claimed and did not start; leave the cluster."""
        ...

    def degraded(self) -> str | None:
        """Why the store is not fully working now (``None`` when it is)."""
        ...

    async def instances(self) -> list[InstanceInfo]:
        """The cluster's instances, this one included."""
        ...
