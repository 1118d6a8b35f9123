"""Submission: admitting specs (all or none), writing them down, queueing and announcing
them — the part of :class:`~.engine.Engine` a submission goes through, as a mixin.

Order of a submission (:meth:`Submissions.submit_many`): parents named by id are looked up
in a shared store; every spec is checked and its task made (:meth:`Submissions._admit`:
ranges, types, unique keys held here, the queue's room for what is runnable now); a shared
store takes the unique keys in its database; a durable store commits; only then are the
tasks tracked, announced and queued (:meth:`Submissions._enqueue`), so a submission the
store cannot commit leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from .admission import check_spec, new_task
from .backlog import Backlog
from .bus import EventBus
from .clock import Clock
from .errors import Duplicate, EngineError, NotFound, QueueFull, ShuttingDown, StoreUnavailable
from .handlers import TypeRegistry
from .index import TaskIndex
from .journal import Journal
from .models import EventKind, Task, TaskSpec
from .order import parents, plan
from .registry import Registry
from .storage import SharedStore
from .tally import Tally
from .unique import UniqueKeys
from .waiting import Waiting

if TYPE_CHECKING:
    from ..config import TaskConfig
    from .workers import WorkerPool


def _no_event(kind: EventKind, task: Task) -> None:
    """A publisher that publishes nothing (``announce=False``)."""


_ON_DUPLICATE = frozenset(("error", "return"))
_CREATED = EventKind.CREATED
"""(A module name: an enum class's attribute costs a ``__getattr__`` hook call on 3.11.)"""


def _plain(spec: TaskSpec) -> bool:
    """No ``run_at``, ``depends_on`` nor unique key (and a valid ``on_duplicate``): the
    order rules (:func:`~.order.plan`) have nothing to check or find in it."""
    return (
        spec.run_at is None
        and not spec.depends_on
        and spec.unique_key is None
        and spec.unique_for is None
        and spec.on_duplicate in _ON_DUPLICATE
    )


def _all_runnable(tasks: list[Task]) -> bool:
    """None of ``tasks`` holds a unique key or waits (for parents or a time): what
    :meth:`~.waiting.Waiting.admit` would return all of, and a key-less batch."""
    for task in tasks:
        if task.depends_on or task.run_at is not None or task.unique_key is not None:
            return False
    return True


class Submissions:
    """The engine's submission methods; :class:`~.engine.Engine` sets these attributes."""

    accepting: bool
    types: TypeRegistry
    clock: Clock
    store: SharedStore | None
    journal: Journal
    journaling: bool
    bus: EventBus
    tally: Tally
    waiting: Waiting
    unique: UniqueKeys
    pool: WorkerPool
    backlog: Backlog
    index: TaskIndex
    registry: Registry
    _tcfg: TaskConfig
    _tg: TaskGroup | None
    _seq: int
    _committing: int
    _new_id: Callable[[], str]

    if TYPE_CHECKING:

        async def lookup(self, id_or_prefix: str) -> Task: ...  # the engine's read seam

    def _admit(
        self, specs: Sequence[TaskSpec], known: frozenset[str] = frozenset()
    ) -> tuple[list[Task], list[Task]]:
        """Check all of ``specs`` and make their tasks, or refuse them all (``QueueFull``,
        ``UnknownTaskType``, ``Duplicate``...). Returns the new tasks (not tracked, queued
        nor announced yet), and the answer for each spec: its new task, or the existing
        one (a duplicate with ``on_duplicate="return"``). ``known``: parent ids found in a
        shared store."""
        if not self.accepting:
            raise ShuttingDown(
                "the engine is shutting down"
                if self._tg is not None
                else "the engine is not running"
            )
        plain = True
        for spec in specs:
            check_spec(spec, self.types, self._tcfg.max_task_timeout)
            plain = plain and _plain(spec)
        now = self.clock.now()
        if plain:
            return self._admit_plain(specs, now)
        local = self.store is None

        def where(i: int) -> str:
            return f"tasks[{i}]." if len(specs) > 1 else ""

        unique = self.unique
        the_plan = plan(
            specs, holder=lambda key: unique.holder(key, now) if local else None, where=where
        )
        # Tasks due later or waiting for parents take no room in the queue until then.
        runnable = sum(
            1
            for i, spec in enumerate(specs)
            if the_plan.new(i) and not spec.depends_on and (spec.run_at or 0.0) <= now
        )
        self._check_room(runnable)
        registry = self.registry

        def exists(task_id: str) -> bool:
            return task_id in registry or task_id in known

        tasks: list[Task] = []
        answers: list[Task] = []
        for i, spec in enumerate(specs):
            if not the_plan.new(i):
                answers.append(the_plan.existing[i] or answers[the_plan.same_as[i]])
                continue
            if local:  # a shared store numbers tasks for the whole cluster
                self._seq += 1
            task_id = self._new_id()
            while task_id in registry:  # 64-bit ids: practically never
                task_id = self._new_id()
            task = new_task(spec, self._tcfg, task_id, self._seq if local else 0, now)
            if spec.depends_on:
                task.depends_on = parents(spec, answers, where(i), exists)
            tasks.append(task)
            answers.append(task)
        return tasks, answers

    def _admit_plain(self, specs: Sequence[TaskSpec], now: float) -> tuple[list[Task], list[Task]]:
        """:meth:`_admit` for specs without time or order fields (see :func:`_plain`): all
        runnable now, none a duplicate, so no plan to make (issue #16: the common case)."""
        self._check_room(len(specs))
        local = self.store is None
        tracked, new_id, cfg = self.registry.get, self._new_id, self._tcfg
        tasks: list[Task] = []
        for spec in specs:
            if local:  # a shared store numbers tasks for the whole cluster
                self._seq += 1
            task_id = new_id()
            # (get, not "in": Registry.__contains__ is called through a slot, from C)
            while tracked(task_id) is not None:  # 64-bit ids: practically never
                task_id = new_id()
            tasks.append(new_task(spec, cfg, task_id, self._seq if local else 0, now))
        return tasks, tasks.copy()

    def _check_room(self, runnable: int) -> None:
        """Refuse a submission of ``runnable`` tasks the queue has no room for."""
        backlog = self.backlog
        free = backlog.free - self._committing
        if runnable > free:
            raise QueueFull(
                f"queue full: {len(backlog)}/{backlog.capacity} queued, "
                f"{runnable} submitted, room for {max(0, free)}",
                depth=len(backlog),
                capacity=backlog.capacity,
                retry_after_s=1.0,
            )

    def _enqueue(self, tasks: list[Task], announce: bool = True) -> None:
        """Announce admitted (and, if stored, committed) tasks and queue them: here, or,
        with a shared store, in its table already (its claimers were notified).
        ``announce=False``: no ``created`` events (a bulk retry publishes one summary)."""
        publish = self.bus.publish_task if announce else _no_event
        on_submitted = self.tally.on_submitted
        for task in tasks:
            on_submitted(task.type)
        if self.store is not None:
            for task in tasks:
                publish(_CREATED, task)
            self.backlog.push_many(tasks)
            return
        registry = self.registry
        registry.add_pending(tasks)
        for task in tasks:
            publish(_CREATED, task)
        if _all_runnable(tasks):  # the common case: no key to take, nothing to wait for
            self.backlog.push_many(tasks, force=True)  # room was checked at admission
            self.pool.wake(len(tasks))
        else:
            self.unique.take(tasks)
            runnable = self.waiting.admit(tasks, registry.get)
            # Past the capacity only for children whose parents had completed already.
            self.backlog.push_many(runnable, force=True)
            self.pool.wake(len(runnable))
            self.waiting.settle()
        if len(registry) > registry.max_tracked:
            self.journal.forget(registry.evict_overflow())

    def submit_nowait(self, specs: Sequence[TaskSpec]) -> list[Task]:
        """Admit all of ``specs`` or none, queued and announced at once: for an engine
        whose tasks are not stored (a stored task is queued only once committed, through
        :meth:`submit_many`)."""
        if self.journaling:
            raise RuntimeError("a stored engine admits tasks through submit_many")
        tasks, answers = self._admit(specs)
        self._enqueue(tasks)
        return answers

    async def submit_many(
        self,
        specs: Sequence[TaskSpec],
        *,
        created: list[bool] | None = None,
        announce: bool = True,
    ) -> list[Task]:
        """Admit all of ``specs`` or none; returns once they are durable (if stored).

        With a store, the tasks are written first and only then tracked, announced and
        queued: a submission the store cannot commit leaves no trace (nothing listed,
        announced, run or kept) and raises ``StoreUnavailable``, so that the client may
        safely send it again. ``created``, if given, is filled with whether each answer
        is a new task (False: an existing one, ``on_duplicate="return"``).
        """
        # (Without a shared store there is nothing to look up: no coroutine for it.)
        known = await self._shared_parents(specs) if self.store is not None else frozenset()
        tasks, answers = self._admit(specs, known)
        if self.store is not None and any(t.unique_key for t in tasks):
            tasks = await self._claim_shared_keys(specs, tasks, answers)
        if created is not None:  # which answers are new tasks (not duplicates returned)
            if len(tasks) == len(answers):  # no duplicate: all new (the common case)
                created.extend([True] * len(answers))
            else:
                new = {id(t) for t in tasks}
                created.extend(id(a) in new for a in answers)
        if not tasks:
            return answers
        if self.journaling:
            changed = self.journal.changed
            for task in tasks:
                changed(task)
            self._committing += len(tasks)
            try:
                # Shielded: once written, the tasks must be queued, whatever happens to
                # the caller; the journal answers every commit (or breaks) in bounded time.
                with anyio.CancelScope(shield=True):
                    await self.journal.commit(fail_fast=True, new_only=True)
            except StoreUnavailable:
                self.journal.forget(tasks)  # not written: never will be
                raise
            finally:
                self._committing -= len(tasks)
        self._enqueue(tasks, announce)
        return answers

    async def _claim_shared_keys(
        self, specs: Sequence[TaskSpec], tasks: list[Task], answers: list[Task]
    ) -> list[Task]:
        """Take the unique keys of new tasks in the shared store's database (atomically,
        whoever else tries); a key held elsewhere makes its task a duplicate."""
        assert self.store is not None
        keys = self.store.keys
        taken: list[Task] = []
        new = {id(t) for t in tasks}
        try:
            for i, (spec, task) in enumerate(zip(specs, answers, strict=True)):
                if task.unique_key is None or id(task) not in new:
                    continue
                holder_id = await keys.claim(task.unique_key, task.id, task.unique_until)
                if holder_id is None:
                    taken.append(task)
                    continue
                holder = await self._await_holder(holder_id)
                if spec.on_duplicate == "error" or holder is None:
                    raise Duplicate(
                        f"unique_key {task.unique_key!r} is held by task {holder_id}",
                        existing=holder,
                        existing_id=holder_id,
                        index=i,
                    )
                answers[i] = holder
        except BaseException:
            with anyio.CancelScope(shield=True):
                for task in taken:
                    await keys.release(task.unique_key, task.id)
            raise
        kept = {id(a) for a in answers}
        return [t for t in tasks if id(t) in kept]

    async def _await_holder(self, task_id: str) -> Task | None:
        """The task holding a key (its submission may still be committing: a moment)."""
        with anyio.move_on_after(1.0):
            while True:
                try:
                    return await self.lookup(task_id)
                except NotFound:
                    await anyio.sleep(0.05)
        return None

    async def _shared_parents(self, specs: Sequence[TaskSpec]) -> frozenset[str]:
        """The parents named by id that a shared store holds (a local store's are all in
        the registry)."""
        if self.store is None:
            return frozenset()
        found: set[str] = set()
        for spec in specs:
            for ref in spec.depends_on:
                if not ref.startswith("$") and ref not in self.registry and ref not in found:
                    try:
                        if (await self.index.lookup(ref)).id == ref:
                            found.add(ref)
                    except EngineError:
                        pass  # refused at admission, naming the id
        return frozenset(found)

    async def submit(self, spec: TaskSpec) -> Task:
        return (await self.submit_many([spec]))[0]
