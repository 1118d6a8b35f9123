"""The engine: one object composing the worker pool, the backlog, the index, the journal
and the bus, with the methods adapters call.

Adapters call plain methods (``submit_many``, ``cancel``, ``retry``, ``resize``,
``pause``; reads are ``async``: ``lookup``, ``list_tasks``, ``snapshot``) and follow state
through the bus and ``stats()``. All of it runs on one event loop; every background job
(workers, timeout watchdog, backlog timer, scaler, janitor, loop-lag probe, and a shared
store's claimer, listener and heartbeat) lives in the engine's own task group, which
``async with Engine(...)`` opens and closes, each job supervised (:mod:`.supervise`).

Where tasks live is the store's business: the local stores (memory, SQLite) are a
journal, and the engine keeps pending tasks in a :class:`~.backlog.LocalBacklog` and reads
from its registry; a shared store (the cluster) brings its own backlog and index
(:mod:`.storage`). The workers (:mod:`.workers`) do not tell the two apart.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config import Config, ConfigError
from .admission import check_spec, new_task
from .backlog import Backlog, LocalBacklog, recover
from .bus import EventBus, LogEvent, TaskEvent
from .clock import Clock, SystemClock
from .errors import (
    AlreadyFinished,
    Duplicate,
    EngineError,
    NotFound,
    QueueFull,
    ShuttingDown,
    StoreUnavailable,
)
from .handlers import TypeRegistry, build_registry
from .index import LocalIndex, TaskIndex
from .instance_view import InstanceInfo
from .journal import Journal, MemoryJournal
from .logs import LogFeed
from .models import FINAL_STATUSES, EventKind, Task, TaskError, TaskSpec, TaskStatus
from .order import parents, plan
from .procpool import process_pool
from .registry import Registry
from .schedules import MemorySchedules, Scheduler
from .stats import BusStats, EngineStats, QueueStats, Stats
from .storage import SharedStore
from .supervise import supervised
from .tally import Tally
from .typelimits import TypeGates
from .unique import UniqueKeys
from .waiting import Waiting
from .workers import PoolState, WorkerPool, error_summary

LOOP_PROBE_S = 0.25
SNAPSHOT_LIMIT = 500
SHARED_KEEP_FINISHED = 1000
"""With a shared store, how many of its finished tasks an instance keeps in memory (for
fresh answers right after they end); the cluster's history is in the database."""
VERSION = "0.1.0"
_logger = logging.getLogger("workerpool_tui.engine")

__all__ = ["Engine", "EngineStats", "PoolState", "error_summary", "random_id"]


def _no_event(event: TaskEvent) -> None:
    return None


def random_id() -> str:
    """A URL-safe, 16-hex-digit random id (64 bits)."""
    return f"{random.getrandbits(64):016x}"


class Engine:
    def __init__(
        self,
        config: Config | None = None,
        *,
        types: TypeRegistry | None = None,
        clock: Clock | None = None,
        journal: Journal | None = None,
        store: SharedStore | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        cfg = config or Config()
        self.config = cfg
        self._tcfg = cfg.task
        self.types = types or build_registry(
            handlers=cfg.task.handlers, allow_shell=cfg.task.allow_shell
        )
        unknown = sorted(set(cfg.task.types) - set(self.types.names()))
        if unknown:
            raise ConfigError(
                f"{cfg.source}: task.types.{unknown[0]}: no such task type"
                f" (known: {', '.join(self.types.names())})"
            )
        self.procs = process_pool(self.types, cfg, self.log)
        """The worker processes of ``isolation = "process"`` types (``None``: no such type)."""
        self.clock: Clock = clock or SystemClock()
        self.store = store
        self.journal: Journal = store.journal if store else (journal or MemoryJournal())
        self.journaling = not isinstance(self.journal, MemoryJournal)
        """Whether changes are written down (the per-task paths skip the call when not)."""
        self._new_id = id_factory or random_id
        self.bus = EventBus()
        self.log_feed = LogFeed()
        self.tally = Tally()
        """Totals for ``GET /metrics`` (what this instance admitted, ran and finished)."""
        self.stats_data = Stats()
        self.waiting = Waiting(self.clock, self._release, self._cancel_waiting)
        """Pending tasks waiting for a time or for parents (local stores)."""
        self.unique = UniqueKeys()
        """Unique keys held (local stores; the cluster's database holds its own)."""
        self.pool = WorkerPool(self)
        self.scheduler = Scheduler(
            self,
            list(cfg.schedule),
            getattr(store or self.journal, "schedules", None) or MemorySchedules(),
        )
        """Recurring schedules (their API-made ones kept by the store, if it can)."""
        self.backlog: Backlog
        self.index: TaskIndex
        if store is None:
            self.registry = Registry(cfg.task.max_tracked_tasks)
            self.backlog = LocalBacklog(cfg.task.queue_capacity, self.pool.wake)
            self.index = LocalIndex(self.registry, self.waiting)
        else:
            # Only the tasks this instance runs, and a few it ran last.
            self.registry = Registry(cfg.task.max_concurrent_tasks + SHARED_KEEP_FINISHED)
            self.backlog, self.index = store.bind(self)
        self.gates = TypeGates(
            self.backlog,
            cfg.task.types,
            wake=self.pool.wake,
            owned=lambda task: self.registry.get(task.id) is task,
            running_of=self.pool.running_count,
            changed=self.journal.changed,
        )
        """Per-type concurrency, rate limit and pause in front of the backlog."""
        if self.procs is not None:  # process tasks never wait for a process on a worker
            self.gates.share_slots(
                [t.name for t in self.types if t.isolation == "process"], self.procs.size
            )
        self.backlog = self.gates
        self.queue = self.backlog
        """The backlog, by its old name (its length is the queue depth)."""
        self._seq = 0
        self._committing = 0
        """Tasks admitted and waiting for their commit: they hold their room in the queue."""
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._journal_stack = AsyncExitStack()
        self.started_at = self.clock.now()
        self._started_mono = time.monotonic()
        self.accepting = False
        self.closed = False
        self.fatal_error: str | None = None
        """Why a component could not go on (set once, by :meth:`report_fatal`)."""
        self._fatal: anyio.Event | None = None

    @property
    def loop_thread(self) -> int:
        """The event loop's thread (handlers' progress calls from elsewhere hop to it)."""
        return self.pool.loop_thread

    @property
    def shared(self) -> bool:
        """Tasks live in a store shared by several instances (the cluster)."""
        return self.store is not None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Engine:
        self._fatal = anyio.Event()
        # The journal's own group outlives the engine's: at shutdown the workers stop
        # first, then the journal writes down how they ended, then it closes.
        self._journal_stack = AsyncExitStack()
        jtg = await self._journal_stack.enter_async_context(anyio.create_task_group())
        try:
            recovered = await self.journal.open(jtg, self.report_fatal)
        except BaseException:
            # A store that cannot be opened (in use, corrupt): leave nothing running.
            await self._journal_stack.aclose()
            raise
        try:
            self._recover(recovered)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.journal.close()
            await self._journal_stack.aclose()
            raise
        self._stack = AsyncExitStack()
        tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._tg = tg
        self.pool.start(tg)
        if self.procs is not None:
            self.procs.start()
        # Each keeps no state of its own between two turns: restarted after a failure.
        jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("timeout watchdog", self.pool.watchdog),
            ("backlog", self.backlog.run),
            ("scaler", self.pool.scaler),
            ("janitor", self._janitor),
            ("loop probe", self._loop_probe),
        ]
        if self.store is not None:
            jobs.append(("cluster store", self.store.run))
        else:
            jobs.append(("waiting timer", self.waiting.run))
        jobs.append(("scheduler", self.scheduler.run))
        for name, job in jobs:
            tg.start_soon(self._supervised, f"engine {name}", job, name=name)
        self.accepting = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def _supervised(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        await supervised(name, job, self.report_fatal, restart=True, logger=_logger)

    def report_fatal(self, reason: str) -> None:
        """A component cannot go on (see :mod:`.supervise`): stop taking work and tell
        whoever owns the process (:meth:`wait_fatal`) to shut down and exit non-zero.
        The first reason is kept in :attr:`fatal_error`."""
        if self.fatal_error is not None:
            return
        self.fatal_error = reason
        self.accepting = False
        _logger.critical("%s; shutting down", reason)
        self.bus.publish(LogEvent("critical", f"{reason}; shutting down", self.clock.now()))
        if self._fatal is not None:
            self._fatal.set()

    async def wait_fatal(self) -> str:
        """Return (with :attr:`fatal_error`) once a component reported a fatal failure."""
        if self._fatal is None:
            raise RuntimeError("the engine is not running")
        await self._fatal.wait()
        assert self.fatal_error is not None
        return self.fatal_error

    async def shutdown(self, grace_s: float | None = None) -> None:
        """Stop intake, let running tasks finish for up to ``grace_s`` (default
        ``worker.shutdown_timeout``), cancel the rest and stop every background job."""
        if self.closed or self._stack is None or self._tg is None:
            return
        self.accepting = False
        self.pool.paused = True  # workers take nothing new
        timeout = self.config.worker.shutdown_timeout if grace_s is None else grace_s
        with anyio.CancelScope(shield=True):
            if not self.journal.durable:
                for task in [t for t in self.registry.active() if t.status is TaskStatus.PENDING]:
                    if task.status is TaskStatus.PENDING:  # a parent's cancel took it
                        self._cancel_pending(task, "cancelled: shutting down")
            await self.pool.drain(timeout)
        # The task group must be left from the scope it was entered in, so not shielded;
        # its own exit waits for every worker to unwind.
        self._tg.cancel_scope.cancel()
        try:
            await self._stack.aclose()
        finally:
            try:
                with anyio.CancelScope(shield=True):
                    if self.procs is not None:
                        await self.procs.close()
                    # Workers marked their interrupted tasks final as they unwound; write it.
                    try:
                        await self.journal.commit()
                    finally:  # a store that cannot write must still be closed and unlocked
                        try:
                            if self.store is not None:
                                await self.store.stop()
                        finally:
                            await self.journal.close()
            finally:
                await self._journal_stack.aclose()
                self.closed = True
                self.bus.close()

    def _recover(self, tasks: Sequence[Task]) -> None:
        """Tasks from a local store: history stays history, pending work goes back in line."""
        if not tasks:
            return
        self._seq = max(task.seq for task in tasks)
        requeued = recover(
            tasks,
            registry=self.registry,
            backlog=self.backlog,
            changed=self.journal.changed,
            now=self.clock.now(),
            requeue_running=self.config.store.recover_running == "requeue",
            hold=self._hold_recovered,
        )
        if requeued:
            self.log("info", f"recovered {requeued} pending task(s) from the store")

    def _hold_recovered(self, tasks: list[Task]) -> list[Task]:
        """Recovered pending tasks: those runnable now (the others wait)."""
        self.unique.take(t for t in self.registry.newest() if t.unique_key is not None)
        return self.waiting.admit(tasks, self.registry.get)

    # ------------------------------------------------------------------ submission
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
        for spec in specs:
            check_spec(spec, self.types, self._tcfg.max_task_timeout)
        now = self.clock.now()
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

    def _enqueue(self, tasks: list[Task], announce: bool = True) -> None:
        """Announce admitted (and, if stored, committed) tasks and queue them: here, or,
        with a shared store, in its table already (its claimers were notified).
        ``announce=False``: no ``created`` events (a bulk retry publishes one summary)."""
        publish = self.bus.publish_uncoalesced if announce else _no_event
        on_submitted = self.tally.on_submitted
        for task in tasks:
            on_submitted(task.type)
        if self.store is not None:
            for task in tasks:
                publish(TaskEvent(EventKind.CREATED, task))
            self.backlog.push_many(tasks)
            return
        self.registry.add_pending(tasks)
        for task in tasks:
            publish(TaskEvent(EventKind.CREATED, task))
        self.unique.take(tasks)
        runnable = self.waiting.admit(tasks, self.registry.get)
        # Past the capacity only for children whose parents had completed already.
        self.backlog.push_many(runnable, force=True)
        self.pool.wake(len(runnable))
        self.waiting.settle()
        registry = self.registry
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
        known = await self._shared_parents(specs)
        tasks, answers = self._admit(specs, known)
        if self.store is not None and any(t.unique_key for t in tasks):
            tasks = await self._claim_shared_keys(specs, tasks, answers)
        if created is not None:  # which answers are new tasks (not duplicates returned)
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
                    await self.journal.commit(fail_fast=True)
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

    # ------------------------------------------------------------------ background jobs
    async def _janitor(self) -> None:
        interval = min(30.0, max(1.0, self._tcfg.cleanup_completed_tasks_after / 4))
        while True:
            await anyio.sleep(interval)
            self.run_cleanup()
            if self.store is not None:
                await self.store.retention()

    def run_cleanup(self) -> int:
        """Drop final tasks past their retention; returns how many (of this instance)."""
        if self.store is not None:  # keep only the newest few: history is in the store
            return len(self.registry.evict_overflow())
        self.unique.sweep(self.clock.now())
        dropped = self.registry.cleanup(
            self.clock.now(), self._tcfg.cleanup_completed_tasks_after, self._tcfg.keep_failed_for
        )
        if dropped:
            self.journal.forget(dropped)
        return len(dropped)

    async def _loop_probe(self) -> None:
        stats = self.stats_data
        while True:
            start = time.monotonic()
            await anyio.sleep(LOOP_PROBE_S)
            lag = max(0.0, time.monotonic() - start - LOOP_PROBE_S)
            self.pool.sample_busy()
            stats.loop_lag_s = lag
            stats.loop_lag_max_s = max(lag, stats.loop_lag_max_s * 0.98)

    def log(self, level: str, message: str) -> None:
        _logger.log(logging.getLevelName(level.upper()), message)
        self.bus.publish(LogEvent(level, message, self.clock.now()))

    # ------------------------------------------------------------------ pool control
    @property
    def paused(self) -> bool:
        return self.pool.paused

    @property
    def min_workers(self) -> int:
        return self.pool.min_workers

    @property
    def max_workers(self) -> int:
        return self.pool.max_workers

    @property
    def auto_scaling(self) -> bool:
        return self.pool.auto_scaling

    def pool_state(self) -> PoolState:
        return self.pool.state()

    def resize(
        self, *, min_workers: int | None = None, max_workers: int | None = None
    ) -> PoolState:
        """Change the bounds at run time; the pool moves into them at once."""
        self.pool.resize(min_workers=min_workers, max_workers=max_workers)
        return self.pool.state()

    def pause(self) -> PoolState:
        """Stop dispatching (running tasks go on)."""
        self.pool.pause()
        return self.pool.state()

    def resume(self) -> PoolState:
        self.pool.resume()
        return self.pool.state()

    def scale_once(self, busy_avg: float | None = None) -> int:
        return self.pool.scale_once(busy_avg)

    # ------------------------------------------------------------------ reading
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
    ) -> tuple[list[Task], int]:
        """Newest first; ``q`` matches an id prefix, the type or the message; ``waiting``
        is ``time``, ``dependencies`` or ``none`` (pending tasks waiting for that, or
        tasks waiting for nothing)."""
        statuses = frozenset(status) if status is not None else None
        return await self.index.page(
            statuses=statuses, type_=type_, q=q, limit=limit, offset=offset, waiting=waiting
        )

    async def snapshot(self, limit: int = SNAPSHOT_LIMIT) -> list[Task]:
        """Every non-final task and the most recent final ones, ``limit`` in all, newest first."""
        return await self.index.snapshot(limit)

    def snapshot_now(self, limit: int = SNAPSHOT_LIMIT) -> list[Task] | None:
        """:meth:`snapshot` without waiting, when the tasks are all here (a local store);
        ``None`` with a shared store."""
        index = self.index
        return index.snapshot_now(limit) if isinstance(index, LocalIndex) else None

    def uptime_s(self) -> float:
        return round(time.monotonic() - self._started_mono, 3)

    def degraded(self) -> str | None:
        """Why the engine is not fully working (its shared store cannot reach its
        database, say); ``None`` when it is."""
        return None if self.store is None else self.store.degraded()

    async def instances(self) -> list[InstanceInfo]:
        """The instances of the cluster (``[]`` without a shared store)."""
        return [] if self.store is None else await self.store.instances()

    def stats(self) -> EngineStats:
        now = self.clock.now()
        bus = self.bus.stats()
        backlog = self.backlog
        return EngineStats(
            tasks=self.index.counts(),
            queue=QueueStats(depth=len(backlog), capacity=backlog.capacity),
            workers=self.pool.state(),
            throughput=self.stats_data.throughput(now),
            latency=self.stats_data.latency(),
            bus=BusStats(**bus),
            scaling=list(self.stats_data.scaling)[-10:],
            uptime_s=self.uptime_s(),
        )
