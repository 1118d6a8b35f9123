"""What is done to one task that exists: retry, cancel (pending, running, or held by another
cluster instance), run now, and the waiting-set callbacks that release or cancel children —
the part of :class:`~.engine.Engine` that acts on a task by id, as a mixin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backlog import Backlog
from .bus import EventBus, TaskEvent
from .clock import Clock
from .errors import AlreadyFinished, NotFound
from .journal import Journal
from .models import FINAL_STATUSES, EventKind, Task, TaskError, TaskSpec, TaskStatus
from .registry import Registry
from .storage import SharedStore
from .tally import Tally
from .waiting import Waiting

if TYPE_CHECKING:
    from .workers import WorkerPool


class TaskActions:
    """The engine's per-task actions; :class:`~.engine.Engine` sets these attributes."""

    clock: Clock
    store: SharedStore | None
    journal: Journal
    bus: EventBus
    tally: Tally
    waiting: Waiting
    pool: WorkerPool
    backlog: Backlog
    registry: Registry

    if TYPE_CHECKING:

        async def lookup(self, id_or_prefix: str) -> Task: ...  # the engine's read seam

        async def submit(self, spec: TaskSpec) -> Task: ...  # :class:`.submission.Submissions`

    async def retry(self, task_id: str) -> Task:
        """A new task with the same type, payload and options, linked by ``retry_of``."""
        old = await self.lookup(task_id)
        return await self.submit(
            TaskSpec(
                type=old.type,
                payload=old.payload,
                priority=old.priority,
                timeout_s=old.timeout_s,
                max_retries=old.max_retries,
                retry_of=old.id,
                # Not its unique_key: a retry is asked for on purpose, often while the
                # old task still holds the key.
                depends_on=old.depends_on or (),
            )
        )

    # ------------------------------------------------------------------ cancel
    async def cancel(self, task_id: str, *, wait_s: float = 30.0) -> Task:
        """Cancel a task (by id or unique prefix). A pending one leaves the queue at once;
        for a running one this returns once its handler has stopped (a sync handler in a
        thread stops when it next reports progress or returns; after ``wait_s`` the task
        is returned as it is). With a shared store, a task running on another instance
        is cancelled by its owner (see the store)."""
        task = await self.lookup(task_id)
        held = self.registry.get(task.id)
        if held is None and self.store is not None:
            if task.status in FINAL_STATUSES:
                raise AlreadyFinished(f"task {task.id} is already {task.status.value}")
            return await self.store.cancel(task, wait_s)
        task = held or task
        if task.status in FINAL_STATUSES:
            raise AlreadyFinished(f"task {task.id} is already {task.status.value}")
        if task.status is TaskStatus.PENDING:
            self._cancel_pending(task, "cancelled by request")
        else:
            await self.pool.interrupt(task, "cancelled", wait_s)
        await self.journal.commit()
        return task

    def cancel_pending_quietly(self, task: Task) -> None:
        """Cancel a pending task held here without its event (a bulk cancel)."""
        self._cancel_pending(task, "cancelled by request", announce=False)

    def _cancel_pending(
        self,
        task: Task,
        message: str,
        error: TaskError | None = None,
        *,
        announce: bool = True,
    ) -> None:
        old = task.transition(TaskStatus.CANCELLED)
        if self.store is not None or not self.waiting.discard(task):
            self.backlog.discard(task)
        task.finished_at = self.clock.now()
        task.message = message
        task.error = error
        self.registry.moved(task, old)
        self.journal.changed(task)
        self.tally.on_finished(task.type, "cancelled", None)
        if announce:
            self.bus.publish(TaskEvent(EventKind.CANCELLED, task))
        self.pool.notify_finished(task)
        if task.id in self.waiting.children:
            self.waiting.parent_final(task)

    def _cancel_waiting(self, task: Task, error: TaskError) -> None:
        """A child whose parent failed or was cancelled (see :mod:`.waiting`)."""
        self._cancel_pending(task, f"cancelled: {error.type}: {error.message}", error)

    def _release(self, tasks: list[Task]) -> None:
        """Waiting tasks that became runnable: in the queue, past its capacity (they were
        admitted once)."""
        self.backlog.push_many(tasks, force=True)
        self.pool.wake(len(tasks))

    async def run_now(self, task_id: str) -> Task:
        """Start a task waiting for a time now (``POST /tasks/{id}/run``): it joins the
        queue; a runnable or running one is returned as it is. ``Blocked`` for one
        waiting for its parents, ``AlreadyFinished`` for a final one."""
        task = await self.lookup(task_id)
        if task.status in FINAL_STATUSES:
            raise AlreadyFinished(f"task {task.id} is already {task.status.value}")
        if self.store is not None and self.registry.get(task.id) is None:
            return await self.store.run_now(task)
        if self.waiting.run_now(task):
            self.journal.changed(task)
            await self.journal.commit()
        return task

    def parent_results(self, task: Task) -> dict[str, Any]:
        """The results of ``task``'s parents, by id (those still held in memory)."""
        out: dict[str, Any] = {}
        for parent_id in task.depends_on or ():
            parent = self.registry.get(parent_id)
            if parent is not None:
                out[parent_id] = parent.result
        return out

    async def load_parent_results(self, task: Task) -> dict[str, Any] | None:
        """Cluster mode: the results of ``task``'s parents, those this instance does not
        hold read from the store in one query (a parent may have run on another
        instance); ``None`` when every parent is here (the registry answers)."""
        if self.store is None or not task.depends_on:
            return None
        out = self.parent_results(task)
        missing = [p for p in task.depends_on if p not in out]
        if not missing:
            return None
        out.update(await self.store.results(missing))
        return out

    def interrupt_held(self, task_id: str, reason: str) -> bool:
        """Interrupt a task this instance runs (a shared store's cancel from another
        instance, or a lost lease); False when it does not run it."""
        task = self.registry.get(task_id)
        if task is None or task.status.final:
            return False
        if task.status is TaskStatus.PENDING:  # claimed, not started yet
            if reason == "cancelled":
                self._cancel_pending(task, "cancelled by request")
            return True
        worker = self.pool.running(task)
        if worker is None:
            return False
        worker.interrupt(reason)
        return True

    async def wait_finished(self, task_id: str) -> Task:
        """Wait until the task (held here) is final (cancel the caller's scope to stop)."""
        task = self.registry.get(task_id)
        if task is None:
            raise NotFound(f"no task with id {task_id!r}")
        return await self.pool.wait_finished(task)
