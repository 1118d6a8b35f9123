"""The engine: one object that owns the queue, the workers, the registry and the bus.

Adapters call plain methods (``submit``, ``cancel``, ``retry``, ``resize``, ``pause``)
and read state through the bus and ``stats()``. All of it runs on one event loop; every
background job (workers, scaler, timeout watchdog, retry timer, cleanup, loop-lag probe)
lives in the engine's own task group, which ``async with Engine(...)`` opens and closes.

Hot path (designed against PERF-NOTES): a worker pops from the heap without a hand-off,
keeps one cancel scope across many tasks (a new scope only after a cancel or timeout,
since a scope costs microseconds), and leaves timeouts to a watchdog that sleeps until the
earliest deadline. Workers give the loop a turn every few hundred microseconds of work.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from ..config import Config
from .admission import (
    MAX_RETRIES_MAX,
    PRIORITY_MAX,
    PRIORITY_MIN,
    check_int,
    check_payload,
    check_timeout,
)
from .bus import EventBus, LogEvent, PoolEvent, TaskEvent
from .clock import Clock, SystemClock
from .errors import (
    AlreadyFinished,
    AmbiguousId,
    InvalidRequest,
    NotFound,
    QueueFull,
    ShuttingDown,
    StoreUnavailable,
    UnknownTaskType,
)
from .handlers import TaskContext, TaskInterrupted, TypeRegistry, build_registry
from .journal import Journal, MemoryJournal
from .models import (
    FINAL_STATUSES,
    EventKind,
    Task,
    TaskError,
    TaskSpec,
    TaskStatus,
)
from .pool import Worker, scaling_decision
from .queue import PriorityQueue
from .registry import Registry
from .stats import Latency, ScalingDecision, Stats, Throughput
from .supervise import supervised

ABANDON_AFTER_S = 5.0
"""At shutdown, after the interrupt: how long a sync handler has to notice it (through
``ctx.cancel_requested`` or ``ctx.progress``) before its thread is abandoned."""
SLICE_S = 0.002
"""Workers together hold the loop for at most about this long between turns."""
MAX_RETRY_DELAY_S = 3600.0
"""The retry backoff doubles per attempt up to this (an hour), like Celery's
``retry_backoff_max``: a hundred retries must not mean waiting for 2^99 seconds."""
MIN_ID_PREFIX = 4
"""The shortest id prefix :meth:`Engine.resolve` accepts."""
AMBIGUOUS_CANDIDATES = 10
LOOP_PROBE_S = 0.25
SNAPSHOT_LIMIT = 500
VERSION = "0.1.0"
_logger = logging.getLogger("workerpool_tui.engine")


class TaskCounts(msgspec.Struct, frozen=True):
    total: int
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int


class QueueStats(msgspec.Struct, frozen=True):
    depth: int
    capacity: int


class PoolState(msgspec.Struct, frozen=True):
    current: int
    busy: int
    idle: int
    min: int
    max: int
    paused: bool
    auto_scaling: bool


class BusStats(msgspec.Struct, frozen=True):
    published: int
    dropped: int
    subscribers: int
    resyncs: int


class EngineStats(msgspec.Struct, frozen=True):
    """The stats object of ``GET /api/v1/tasks/status/stats`` and of WebSocket messages."""

    tasks: TaskCounts
    queue: QueueStats
    workers: PoolState
    throughput: Throughput
    latency: Latency
    bus: BusStats
    scaling: list[ScalingDecision]
    uptime_s: float


_encode_json = msgspec.json.Encoder().encode


def _json_or_none(value: Any) -> msgspec.Raw | None:
    """A partial result attached to a handler's exception, if JSON can hold it."""
    if value is None:
        return None
    try:
        return msgspec.Raw(_encode_json(value))
    except Exception:
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
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        cfg = config or Config()
        self.config = cfg
        self._wcfg = cfg.worker
        self._tcfg = cfg.task
        self.types = types or build_registry(
            handlers=cfg.task.handlers, allow_shell=cfg.task.allow_shell
        )
        self.clock: Clock = clock or SystemClock()
        self._now = self.clock.now
        self._journal: Journal = journal or MemoryJournal()
        self._changed: Callable[[Task], None] = self._journal.changed
        self._journaling = not isinstance(self._journal, MemoryJournal)
        """Whether changes are written down (the per-task paths skip the call when not)."""
        self._new_id = id_factory or random_id
        self._type_of = self.types.get
        self.bus = EventBus()
        self._publish = self.bus.publish_uncoalesced  # never used for progress
        self.registry = Registry(cfg.task.max_tracked_tasks)
        self.queue = PriorityQueue(cfg.task.queue_capacity)
        self.stats_data = Stats()
        self._limiter = anyio.CapacityLimiter(max(1, cfg.task.max_concurrent_tasks))
        self.min_workers = min(cfg.worker.min_workers, cfg.task.max_concurrent_tasks)
        self.max_workers = min(cfg.worker.max_workers, cfg.task.max_concurrent_tasks)
        self.auto_scaling = cfg.worker.enable_auto_scaling
        self.paused = False
        self._workers: dict[int, Worker] = {}
        """The counted pool (``current``); retiring workers have left it."""
        self._live: dict[int, Worker] = {}
        """Every worker still running, retiring ones included."""
        self._idle: list[Worker] = []
        self._next_worker_id = 1
        self._busy = 0
        self._busy_sum = 0
        self._busy_samples = 0
        self._seq = 0
        self._committing = 0
        """Tasks admitted and waiting for their commit: they hold their room in the queue."""
        self._retry_heap: list[tuple[float, int, Task]] = []
        self._retry_wake: anyio.Event | None = None
        self._watch_next = math.inf
        self._watch_wake: anyio.Event | None = None
        self._finish_waiters: dict[str, anyio.Event] = {}
        self._idle_all: anyio.Event | None = None
        self._slice_start = time.monotonic()
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._journal_stack = AsyncExitStack()
        self.started_at = self.clock.now()
        self._started_mono = time.monotonic()
        self.loop_thread = threading.get_ident()
        self.accepting = False
        self.closed = False
        self.fatal_error: str | None = None
        """Why a component could not go on (set once, by :meth:`report_fatal`)."""
        self._fatal: anyio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Engine:
        self.loop_thread = threading.get_ident()
        self._fatal = anyio.Event()
        # The journal's own group outlives the engine's: at shutdown the workers stop
        # first, then the journal writes down how they ended, then it closes.
        self._journal_stack = AsyncExitStack()
        jtg = await self._journal_stack.enter_async_context(anyio.create_task_group())
        try:
            recovered = await self._journal.open(jtg, self.report_fatal)
        except BaseException:
            # A store that cannot be opened (in use, corrupt): leave nothing running.
            await self._journal_stack.aclose()
            raise
        try:
            self._recover(recovered)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._journal.close()
            await self._journal_stack.aclose()
            raise
        self._stack = AsyncExitStack()
        tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._tg = tg
        for _ in range(self.min_workers):
            self._spawn()
        # Each keeps no state of its own between two turns: restarted after a failure.
        for name, job in (
            ("timeout watchdog", self._watchdog),
            ("retry timer", self._retry_timer),
            ("scaler", self._scaler),
            ("janitor", self._janitor),
            ("loop probe", self._loop_probe),
        ):
            tg.start_soon(self._supervised, f"engine {name}", job, name=name)
        self.accepting = True
        return self

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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def shutdown(self, grace_s: float | None = None) -> None:
        """Stop intake, let running tasks finish for up to ``grace_s`` (default
        ``worker.shutdown_timeout``), cancel the rest and stop every background job."""
        if self.closed or self._stack is None or self._tg is None:
            return
        self.accepting = False
        self.paused = True  # workers take nothing new
        timeout = self._wcfg.shutdown_timeout if grace_s is None else grace_s
        with anyio.CancelScope(shield=True):
            if not self._journal.durable:
                for task in [t for t in self.registry.active() if t.status is TaskStatus.PENDING]:
                    self._cancel_pending(task, "cancelled: shutting down")
            if self._busy:
                self._log("info", f"waiting up to {timeout:g}s for {self._busy} running task(s)")
                self._idle_all = anyio.Event()
                with anyio.move_on_after(timeout):
                    await self._idle_all.wait()
            for w in list(self._live.values()):
                w.interrupt("shutdown")
            await self._abandon_stuck_threads()
        # The task group must be left from the scope it was entered in, so not shielded;
        # its own exit waits for every worker to unwind.
        self._tg.cancel_scope.cancel()
        try:
            await self._stack.aclose()
        finally:
            try:
                with anyio.CancelScope(shield=True):
                    # Workers marked their interrupted tasks final as they unwound; write it.
                    try:
                        await self._journal.commit()
                    finally:  # a store that cannot write must still be closed and unlocked
                        await self._journal.close()
            finally:
                await self._journal_stack.aclose()
                self.closed = True
                self.bus.close()

    async def _abandon_stuck_threads(self) -> None:
        """Sync handlers get :data:`ABANDON_AFTER_S` to notice the shutdown; the threads
        of those that ignore it are left to finish on their own (anyio's worker threads
        do not keep the process alive), so that shutdown never hangs."""
        stuck = [w for w in self._live.values() if w.thread_scope is not None]
        if not stuck:
            return
        with anyio.move_on_after(ABANDON_AFTER_S):
            while any(w.thread_scope is not None for w in stuck):
                self._idle_all = anyio.Event()
                await self._idle_all.wait()
        for w in stuck:
            scope = w.thread_scope
            if scope is not None and w.task is not None:
                self._log(
                    "warning",
                    f"task {w.task.id}: its sync handler ignored the shutdown for"
                    f" {ABANDON_AFTER_S:g}s; its thread is abandoned",
                )
                scope.cancel()

    def _recover(self, tasks: Sequence[Task]) -> None:
        """Tasks from the journal: history stays history, pending work goes back in line."""
        requeue: list[Task] = []
        recover_running = self.config.store.recover_running
        for task in tasks:
            self._seq = max(self._seq, task.seq)
            if task.status is TaskStatus.RUNNING:
                if recover_running == "requeue":
                    task.status = TaskStatus.PENDING
                    task.progress = 0.0
                    task.message = "re-queued after an interrupted run"
                else:
                    task.status = TaskStatus.FAILED
                    task.finished_at = self.clock.now()
                    task.error = TaskError("interrupted", "the process stopped while this task ran")
                self._changed(task)
            self.registry.add(task)
            if task.status is TaskStatus.PENDING:
                requeue.append(task)
        if tasks:
            self.registry.order_finished()
        if requeue:
            self.queue.push_many(requeue, force=True)
            self._log("info", f"recovered {len(requeue)} pending task(s) from the store")

    # ------------------------------------------------------------------ submission
    def _check(self, spec: TaskSpec) -> None:
        tt = self._type_of(spec.type)
        if tt is None:
            if spec.type == "shell_task":
                raise UnknownTaskType(
                    "task type 'shell_task' is disabled; set task.allow_shell = true to enable it"
                )
            known = ", ".join(self.types.names())
            raise UnknownTaskType(f"unknown task type {spec.type!r} (known: {known})")
        check_int("priority", spec.priority, PRIORITY_MIN, PRIORITY_MAX)
        if spec.timeout_s is not None:
            check_timeout(spec.timeout_s, self._tcfg.max_task_timeout)
        if spec.max_retries is not None:
            check_int("max_retries", spec.max_retries, 0, MAX_RETRIES_MAX)
        check_payload(spec.payload)
        if tt.payload_type is not None:
            try:
                tt.check_payload(spec.payload)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None

    def _admit(self, specs: Sequence[TaskSpec]) -> list[Task]:
        """Check all of ``specs`` and make their tasks, or refuse them all (``QueueFull``,
        ``UnknownTaskType``, ...). The tasks are not tracked, queued nor announced yet."""
        if not self.accepting:
            raise ShuttingDown(
                "the engine is shutting down"
                if self._tg is not None
                else "the engine is not running"
            )
        for spec in specs:
            self._check(spec)
        free = self.queue.free - self._committing
        if len(specs) > free:
            raise QueueFull(
                f"queue full: {len(self.queue)}/{self.queue.capacity} queued, "
                f"{len(specs)} submitted, room for {max(0, free)}",
                depth=len(self.queue),
                capacity=self.queue.capacity,
                retry_after_s=1.0,
            )
        now = self.clock.now()
        tcfg = self._tcfg
        tasks = []
        for spec in specs:
            self._seq += 1
            task_id = self._new_id()
            while task_id in self.registry:  # 64-bit ids: practically never
                task_id = self._new_id()
            tasks.append(
                Task(
                    id=task_id,
                    type=spec.type,
                    payload=spec.payload,
                    priority=spec.priority,
                    max_retries=tcfg.default_max_retries
                    if spec.max_retries is None
                    else spec.max_retries,
                    timeout_s=tcfg.default_task_timeout
                    if spec.timeout_s is None
                    else spec.timeout_s,
                    created_at=now,
                    seq=self._seq,
                    retry_of=spec.retry_of,
                )
            )
        return tasks

    def _enqueue(self, tasks: list[Task]) -> None:
        """Track, announce and queue admitted (and, if stored, committed) tasks."""
        self.registry.add_pending(tasks)
        publish = self._publish
        for task in tasks:
            publish(TaskEvent(_CREATED, task))
        self.queue.push_many(tasks)
        self._wake_workers(len(tasks))
        registry = self.registry
        if len(registry) > registry.max_tracked:
            self._journal.forget(registry.evict_overflow())

    def submit_nowait(self, specs: Sequence[TaskSpec]) -> list[Task]:
        """Admit all of ``specs`` or none, queued and announced at once: for an engine
        whose tasks are not stored (a stored task is queued only once committed, through
        :meth:`submit_many`)."""
        if self._journaling:
            raise RuntimeError("a stored engine admits tasks through submit_many")
        tasks = self._admit(specs)
        self._enqueue(tasks)
        return tasks

    async def submit_many(self, specs: Sequence[TaskSpec]) -> list[Task]:
        """Admit all of ``specs`` or none; returns once they are durable (if stored).

        With a store, the tasks are written first and only then tracked, announced and
        queued: a submission the store cannot commit leaves no trace (nothing listed,
        announced, run or kept) and raises ``StoreUnavailable``, so that the client may
        safely send it again.
        """
        tasks = self._admit(specs)
        if self._journaling:
            changed = self._changed
            for task in tasks:
                changed(task)
            self._committing += len(tasks)
            try:
                # Shielded: once written, the tasks must be queued, whatever happens to
                # the caller; the journal answers every commit (or breaks) in bounded time.
                with anyio.CancelScope(shield=True):
                    await self._journal.commit(fail_fast=True)
            except StoreUnavailable:
                self._journal.forget(tasks)  # not written: never will be
                raise
            finally:
                self._committing -= len(tasks)
        self._enqueue(tasks)
        return tasks

    async def submit(self, spec: TaskSpec) -> Task:
        return (await self.submit_many([spec]))[0]

    async def retry(self, task_id: str) -> Task:
        """A new task with the same type, payload and options, linked by ``retry_of``."""
        old = self.resolve(task_id)
        return await self.submit(
            TaskSpec(
                type=old.type,
                payload=old.payload,
                priority=old.priority,
                timeout_s=old.timeout_s,
                max_retries=old.max_retries,
                retry_of=old.id,
            )
        )

    # ------------------------------------------------------------------ cancel
    def _get(self, task_id: str) -> Task:
        task = self.registry.get(task_id)
        if task is None:
            raise NotFound(f"no task with id {task_id!r}")
        return task

    def resolve(self, id_or_prefix: str) -> Task:
        """The task with this id or, for :data:`MIN_ID_PREFIX` characters or more, the one
        task whose id starts with it (the dashboard shows 8-character ids).
        ``AmbiguousId`` lists the candidates when several do; ``NotFound`` otherwise."""
        task = self.registry.get(id_or_prefix)
        if task is not None:
            return task
        if len(id_or_prefix) >= MIN_ID_PREFIX:
            found = self.registry.by_prefix(id_or_prefix, AMBIGUOUS_CANDIDATES + 1)
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

    async def cancel(self, task_id: str, *, wait_s: float = 30.0) -> Task:
        """Cancel a task. A pending one leaves the queue at once; for a running one this
        returns once its handler has stopped (a sync handler in a thread stops when it
        next reports progress or returns; after ``wait_s`` the task is returned as it is)."""
        task = self.resolve(task_id)
        if task.status in FINAL_STATUSES:
            raise AlreadyFinished(f"task {task.id} is already {task.status.value}")
        if task.status is TaskStatus.PENDING:
            self._cancel_pending(task, "cancelled by request")
        else:
            worker = self._live.get(task.worker or -1)
            if worker is not None and worker.task is task:
                done = self._finish_waiters.get(task.id)
                if done is None:
                    done = self._finish_waiters[task.id] = anyio.Event()
                worker.interrupt("cancelled")
                with anyio.move_on_after(wait_s):
                    await done.wait()
        await self._journal.commit()
        return task

    def _cancel_pending(self, task: Task, message: str) -> None:
        old = task.transition(TaskStatus.CANCELLED)
        # A task waiting out a retry backoff is not in the queue; the retry timer skips it.
        if not any(entry[2] is task for entry in self._retry_heap):
            self.queue.discard(task)
        task.finished_at = self.clock.now()
        task.message = message
        self.registry.moved(task, old)
        self._changed(task)
        self.bus.publish(TaskEvent(EventKind.CANCELLED, task))
        self._notify_finished(task)

    # ------------------------------------------------------------------ workers
    def _spawn(self) -> None:
        assert self._tg is not None
        w = Worker(self._next_worker_id)
        self._next_worker_id += 1
        self._workers[w.id] = w
        self._live[w.id] = w
        self._tg.start_soon(self._worker_main, w, name=f"worker-{w.id}")

    def _retire(self, count: int) -> int:
        """Retire up to ``count`` idle workers; returns how many."""
        retired = 0
        while retired < count and self._idle:
            w = self._idle.pop()
            w.retire = True
            del self._workers[w.id]
            if w.waiter is not None:
                w.waiter.set()
            retired += 1
        return retired

    def _wake_workers(self, n: int) -> None:
        idle = self._idle
        while n > 0 and idle:
            w = idle.pop()
            if w.waiter is not None:
                w.waiter.set()
                w.waiter = None
            n -= 1

    def _sample_busy(self) -> None:
        """One sample of the busy count for the scaler's average (taken 4x a second)."""
        self._busy_sum += self._busy
        self._busy_samples += 1

    async def _worker_main(self, w: Worker) -> None:
        try:
            while not w.retire:
                with anyio.CancelScope() as scope:
                    w.scope = scope
                    await self._work(w, scope)
                task = w.task
                if task is not None:  # our scope was cancelled: cancel or timeout
                    self._interrupted(w, task)
        finally:
            task = w.task
            if task is not None and task.status is TaskStatus.RUNNING:
                self._finish(w, task, TaskStatus.CANCELLED, message="cancelled: shutting down")
            self._workers.pop(w.id, None)
            self._live.pop(w.id, None)
            if w in self._idle:
                self._idle.remove(w)

    async def _work(self, w: Worker, scope: anyio.CancelScope) -> None:
        queue, idle = self.queue, self._idle
        while not w.retire:
            task = None if self.paused else queue.pop()
            if task is None:
                idle.append(w)
                waiter = w.waiter = anyio.Event()
                await waiter.wait()
                continue
            await self._run(w, task)
            if scope.cancel_called:
                return
            now = time.monotonic()
            if now - self._slice_start > SLICE_S / len(self._live):
                self._slice_start = now
                await anyio.lowlevel.checkpoint()
                self._slice_start = time.monotonic()

    async def _run(self, w: Worker, task: Task) -> None:
        tt = self._type_of(task.type)
        now = self._now()
        task.transition(_RUNNING)
        task.started_at = now
        task.finished_at = None
        task.attempts += 1
        task.worker = w.id
        task.message = None  # the latest note of this run (a retry note is history now)
        counts = self.registry.counts  # pending -> running: only the counts move
        counts[_PENDING] -= 1
        counts[_RUNNING] += 1
        self.stats_data.queue_wait.append(now - task.created_at)
        w.task = task
        ctx = w.ctx = TaskContext(self, task)
        self._busy += 1
        deadline = w.deadline = time.monotonic() + task.timeout_s
        if deadline < self._watch_next:
            self._watch_next = deadline
            if self._watch_wake is not None:
                self._watch_wake.set()
        if self._journaling:
            self._changed(task)
        self._publish(TaskEvent(_STARTED, task))
        if tt is None:  # recovered from a store whose type is no longer registered
            self._fail(
                w,
                task,
                TaskError("unknown_task_type", f"task type {task.type!r} is not registered"),
            )
            return
        try:
            if tt.is_async:
                result = await tt.handler(ctx, task.payload)
            else:
                result = await self._run_in_thread(w, tt.handler, ctx, task.payload)
        except anyio.get_cancelled_exc_class():
            raise
        except (Exception, SystemExit) as exc:  # a handler's sys.exit() fails only its task
            if w.cancel_reason is not None:
                self._interrupted(w, task)
                return
            if isinstance(exc, TaskInterrupted):
                self._fail(w, task, TaskError("interrupted", "the handler was interrupted"))
                return
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            error = TaskError(type(exc).__name__, _exc_message(exc), tb)
            self._fail(w, task, error, result=_json_or_none(getattr(exc, "task_result", None)))
            return
        if w.cancel_reason is not None:  # the handler swallowed its cancellation
            self._interrupted(w, task)
            return
        raw = None
        if result is not None:
            # Kept as JSON (see Task.result_json): a result JSON cannot hold fails here.
            try:
                raw = msgspec.Raw(_encode_json(result))
            except Exception as exc:
                message = f"the handler's result is not JSON: {_exc_message(exc)}"
                self._finish(w, task, TaskStatus.FAILED, error=TaskError("invalid_result", message))
                return
        self._finish(w, task, _COMPLETED, result=raw)

    async def _run_in_thread(
        self, w: Worker, handler: Callable[..., Any], ctx: TaskContext, payload: dict[str, Any]
    ) -> Any:
        """A sync handler in a worker thread. A cancel or a timeout is passed to it through
        ``ctx`` and waited for (a thread cannot be stopped from outside); only shutdown
        abandons a thread that ignores it (see :data:`ABANDON_AFTER_S`)."""
        with anyio.CancelScope(shield=True) as scope:
            w.thread_scope = scope
            try:
                return await anyio.to_thread.run_sync(
                    handler, ctx, payload, limiter=self._limiter, abandon_on_cancel=True
                )
            finally:
                w.thread_scope = None
        # Only an abandoned thread gets here: the scope swallowed its cancellation.
        raise TaskInterrupted(ctx.task_id)

    def _interrupted(self, w: Worker, task: Task) -> None:
        reason = w.cancel_reason
        if reason == "timeout":
            self._fail(
                w,
                task,
                TaskError(
                    "timeout", f"timed out after {task.timeout_s:g}s (attempt {task.attempts})"
                ),
            )
        elif reason == "cancelled":
            self._finish(w, task, TaskStatus.CANCELLED, message="cancelled by request")
        else:
            self._finish(w, task, TaskStatus.CANCELLED, message="cancelled: shutting down")

    def _fail(
        self, w: Worker, task: Task, error: TaskError, result: msgspec.Raw | None = None
    ) -> None:
        if task.attempts <= task.max_retries and self.accepting:
            self._schedule_retry(w, task, error)
        else:
            self._finish(w, task, TaskStatus.FAILED, error=error, result=result)

    def _release(self, w: Worker) -> None:
        w.task = None
        w.ctx = None
        w.cancel_reason = None
        w.deadline = math.inf
        self._busy -= 1
        if self._busy == 0 and self._idle_all is not None:
            self._idle_all.set()

    def _finish(
        self,
        w: Worker | None,
        task: Task,
        status: TaskStatus,
        *,
        result: msgspec.Raw | None = None,
        error: TaskError | None = None,
        message: str | None = None,
    ) -> None:
        now = self._now()
        old = task.transition(status)
        task.finished_at = now
        task.result_json = result
        task.error = error
        if message is not None:
            task.message = message
        elif error is not None:
            # A final state's message describes it, never a retry note of an earlier run.
            task.message = error_summary(error)
        if status is _COMPLETED:
            task.progress = 100.0
        self.registry.moved(task, old)
        if w is not None:
            self._release(w)
        stats = self.stats_data
        stats.record_finish(now)
        if task.started_at is not None:
            stats.run_time.append(now - task.started_at)
        if self._journaling:
            self._changed(task)
        self._publish(TaskEvent(_FINAL_EVENT[status], task))
        if self._finish_waiters:
            self._notify_finished(task)

    def _notify_finished(self, task: Task) -> None:
        if self._finish_waiters:
            done = self._finish_waiters.pop(task.id, None)
            if done is not None:
                done.set()

    def _schedule_retry(self, w: Worker, task: Task, error: TaskError) -> None:
        old = task.transition(TaskStatus.PENDING)
        self.registry.moved(task, old)
        delay = min(MAX_RETRY_DELAY_S, self._tcfg.retry_backoff * (2 ** (task.attempts - 1)))
        task.error = error
        task.message = (
            f"retry {task.attempts}/{task.max_retries} in {delay:g}s: {error.type}: {error.message}"
        )
        task.progress = 0.0
        self._release(w)
        due = time.monotonic() + delay
        heapq.heappush(self._retry_heap, (due, task.seq, task))
        if self._retry_wake is not None and self._retry_heap[0][2] is task:
            self._retry_wake.set()
        self._changed(task)
        self.bus.publish(TaskEvent(EventKind.RETRYING, task))

    async def wait_finished(self, task_id: str) -> Task:
        """Wait until the task is final (cancel the caller's scope to stop waiting)."""
        task = self._get(task_id)
        if task.status not in FINAL_STATUSES:
            done = self._finish_waiters.get(task.id)
            if done is None:
                done = self._finish_waiters[task.id] = anyio.Event()
            await done.wait()
        return task

    # ------------------------------------------------------------------ progress (TaskContext)
    def _task_progress(self, task: Task, pct: float, message: str | None) -> None:
        if task.status is not TaskStatus.RUNNING:
            return
        task.progress = pct
        if message is not None:
            task.message = message
        self._changed(task)
        self.bus.publish(TaskEvent(EventKind.PROGRESS, task))

    def _task_log(self, task: Task, line: str) -> None:
        task.add_log(line)

    def _call_from_thread(self, fn: Callable[..., object], *args: object) -> None:
        anyio.from_thread.run_sync(fn, *args)

    # ------------------------------------------------------------------ background jobs
    async def _watchdog(self) -> None:
        """Time tasks out: sleep until the earliest deadline, then interrupt the late ones."""
        while True:
            now = time.monotonic()
            nearest = math.inf
            for w in list(self._live.values()):
                if w.task is None:
                    continue
                if w.deadline <= now:
                    w.interrupt("timeout")
                elif w.deadline < nearest:
                    nearest = w.deadline
            self._watch_next = nearest
            self._watch_wake = anyio.Event()
            with anyio.move_on_after(min(nearest - now, 1.0) if nearest < math.inf else 1.0):
                await self._watch_wake.wait()

    async def _retry_timer(self) -> None:
        heap = self._retry_heap
        while True:
            now = time.monotonic()
            due: list[Task] = []
            while heap and heap[0][0] <= now:
                task = heapq.heappop(heap)[2]
                if task.status is TaskStatus.PENDING:
                    due.append(task)
            if due:
                self.queue.push_many(due, force=True)
                self._wake_workers(len(due))
            self._retry_wake = anyio.Event()
            with anyio.move_on_after(heap[0][0] - now if heap else 1.0):
                await self._retry_wake.wait()

    async def _scaler(self) -> None:
        while True:
            await anyio.sleep(self._wcfg.scale_check_interval)
            self._sample_busy()
            busy_avg = self._busy_sum / self._busy_samples
            self._busy_sum = self._busy_samples = 0
            if self.auto_scaling and not self.paused:
                self.scale_once(busy_avg)

    def scale_once(self, busy_avg: float | None = None) -> int:
        """Apply the scaling rule once (``busy_avg`` defaults to the busy count now)."""
        current = len(self._workers)
        decision = scaling_decision(
            current=current,
            busy_avg=self._busy if busy_avg is None else busy_avg,
            busy_now=self._busy,
            queued=len(self.queue),
            min_workers=self.min_workers,
            max_workers=self.max_workers,
            up=self._wcfg.scale_up_threshold,
            down=self._wcfg.scale_down_threshold,
        )
        delta = decision.delta
        if delta > 0:
            for _ in range(delta):
                self._spawn()
            self._wake_workers(delta)
        elif delta < 0:
            delta = -self._retire(-delta)
        if delta:
            self._record_pool("scale", decision.reason, delta)
        return delta

    def _record_pool(self, action: str, reason: str, delta: int) -> None:
        current = len(self._workers)
        self.stats_data.scaling.append(ScalingDecision(self.clock.now(), delta, current, reason))
        self._log("info", reason)
        self.bus.publish(
            PoolEvent(action, reason, current, self.min_workers, self.max_workers, self.paused)
        )

    async def _janitor(self) -> None:
        interval = min(30.0, max(1.0, self._tcfg.cleanup_completed_tasks_after / 4))
        while True:
            await anyio.sleep(interval)
            self.run_cleanup()

    def run_cleanup(self) -> int:
        """Drop final tasks past their retention; returns how many."""
        dropped = self.registry.cleanup(
            self.clock.now(), self._tcfg.cleanup_completed_tasks_after, self._tcfg.keep_failed_for
        )
        if dropped:
            self._journal.forget(dropped)
        return len(dropped)

    async def _loop_probe(self) -> None:
        stats = self.stats_data
        while True:
            start = time.monotonic()
            await anyio.sleep(LOOP_PROBE_S)
            lag = max(0.0, time.monotonic() - start - LOOP_PROBE_S)
            self._sample_busy()
            stats.loop_lag_s = lag
            stats.loop_lag_max_s = max(lag, stats.loop_lag_max_s * 0.98)

    def _log(self, level: str, message: str) -> None:
        _logger.log(logging.getLevelName(level.upper()), message)
        self.bus.publish(LogEvent(level, message, self.clock.now()))

    # ------------------------------------------------------------------ pool control
    def pool_state(self) -> PoolState:
        current = len(self._workers)
        busy = sum(1 for w in self._workers.values() if w.task is not None)
        return PoolState(
            current=current,
            busy=busy,
            idle=current - busy,
            min=self.min_workers,
            max=self.max_workers,
            paused=self.paused,
            auto_scaling=self.auto_scaling,
        )

    def resize(
        self, *, min_workers: int | None = None, max_workers: int | None = None
    ) -> PoolState:
        """Change the bounds at run time; the pool moves into them at once."""
        lo = self.min_workers if min_workers is None else min_workers
        hi = self.max_workers if max_workers is None else max_workers
        if lo < 0 or hi < 1:
            raise InvalidRequest("min_workers must be >= 0 and max_workers >= 1")
        if lo > hi:
            raise InvalidRequest(f"min_workers ({lo}) must not exceed max_workers ({hi})")
        cap = self._tcfg.max_concurrent_tasks
        if hi > cap:
            raise InvalidRequest(
                f"max_workers ({hi}) must not exceed task.max_concurrent_tasks ({cap})"
            )
        self.min_workers, self.max_workers = lo, hi
        current = len(self._workers)
        if current < lo:
            for _ in range(lo - current):
                self._spawn()
            self._wake_workers(lo - current)
        elif current > hi:
            excess = current - hi - self._retire(current - hi)
            # Workers not parked idle (not started yet, between two tasks, or busy) retire
            # at their next loop check, a busy one once its task is done; free ones first.
            for w in sorted(self._workers.values(), key=lambda w: w.task is not None):
                if excess <= 0:
                    break
                if not w.retire:
                    w.retire = True
                    del self._workers[w.id]
                    excess -= 1
        self._record_pool(
            "resize", f"resized: min {lo}, max {hi} ({len(self._workers)} workers)", 0
        )
        return self.pool_state()

    def pause(self) -> PoolState:
        """Stop dispatching (running tasks go on)."""
        if self.accepting and not self.paused:
            self.paused = True
            self._record_pool("pause", "dispatch paused", 0)
        return self.pool_state()

    def resume(self) -> PoolState:
        if self.accepting and self.paused:
            self.paused = False
            self._wake_workers(len(self._idle))
            self._record_pool("resume", "dispatch resumed", 0)
        return self.pool_state()

    # ------------------------------------------------------------------ reading
    def get(self, task_id: str) -> Task | None:
        return self.registry.get(task_id)

    def list_tasks(
        self,
        *,
        status: Iterable[TaskStatus] | None = None,
        type_: str | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Task], int]:
        """Newest first; ``q`` matches an id prefix, the type or the message."""
        statuses = frozenset(status) if status is not None else None
        return self.registry.page(statuses=statuses, type_=type_, q=q, limit=limit, offset=offset)

    def snapshot(self, limit: int = SNAPSHOT_LIMIT) -> list[Task]:
        """Every non-final task and the most recent final ones, ``limit`` in all, newest first."""
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

    def uptime_s(self) -> float:
        return round(time.monotonic() - self._started_mono, 3)

    def stats(self) -> EngineStats:
        counts = self.registry.counts
        now = self.clock.now()
        bus = self.bus.stats()
        return EngineStats(
            tasks=TaskCounts(
                total=len(self.registry),
                pending=counts[TaskStatus.PENDING],
                running=counts[TaskStatus.RUNNING],
                completed=counts[TaskStatus.COMPLETED],
                failed=counts[TaskStatus.FAILED],
                cancelled=counts[TaskStatus.CANCELLED],
            ),
            queue=QueueStats(depth=len(self.queue), capacity=self.queue.capacity),
            workers=self.pool_state(),
            throughput=self.stats_data.throughput(now),
            latency=self.stats_data.latency(),
            bus=BusStats(**bus),
            scaling=list(self.stats_data.scaling)[-10:],
            uptime_s=self.uptime_s(),
        )


def error_summary(error: TaskError) -> str:
    """One line for a failed task's ``message``: the error's type and first line."""
    first = error.message.strip().splitlines()[0] if error.message.strip() else ""
    text = f"{error.type}: {first}" if first else error.type
    return text if len(text) <= 200 else text[:199] + "…"


def _exc_message(exc: BaseException) -> str:
    """The exception's text; a handler's exception whose ``str()`` fails must not escape."""
    try:
        return str(exc) or type(exc).__name__
    except Exception:
        return f"{type(exc).__name__} (its message could not be read)"


_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_COMPLETED = TaskStatus.COMPLETED
_STARTED = EventKind.STARTED
_CREATED = EventKind.CREATED
_FINAL_EVENT = {
    TaskStatus.COMPLETED: EventKind.COMPLETED,
    TaskStatus.FAILED: EventKind.FAILED,
    TaskStatus.CANCELLED: EventKind.CANCELLED,
}
