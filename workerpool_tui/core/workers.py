"""The worker pool: long-lived workers that take the next task and run it.

Hot path (designed against PERF-NOTES): a worker pops from the backlog without a hand-off,
keeps one cancel scope across many tasks (a new scope only after a cancel or timeout,
since a scope costs microseconds), and leaves timeouts to a watchdog that sleeps until the
earliest deadline. Workers give the loop a turn every few hundred microseconds of work.

A task ends here: completed, failed (or back to pending for a retry, through the
backlog's :meth:`~.backlog.Backlog.defer`), or cancelled. Sizing the pool (resize, pause,
the auto-scaling rule of :mod:`.pool`) is here too, since it is about these workers.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from .bus import PoolEvent, TaskEvent
from .errors import InvalidRequest
from .handlers import TaskContext, TaskInterrupted
from .models import EventKind, Task, TaskError, TaskStatus
from .pool import Worker, scaling_decision
from .stats import ScalingDecision

if TYPE_CHECKING:
    from .engine import Engine

ABANDON_AFTER_S = 5.0
"""At shutdown, after the interrupt: how long a sync handler has to notice it (through
``ctx.cancel_requested`` or ``ctx.progress``) before its thread is abandoned."""
SLICE_S = 0.002
"""Workers together hold the loop for at most about this long between turns."""
MAX_RETRY_DELAY_S = 3600.0
"""The retry backoff doubles per attempt up to this (an hour), like Celery's
``retry_backoff_max``: a hundred retries must not mean waiting for 2^99 seconds."""

_logger = logging.getLogger("workerpool_tui.engine")
_encode_json = msgspec.json.Encoder().encode
_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_COMPLETED = TaskStatus.COMPLETED
_STARTED = EventKind.STARTED
_FINAL_EVENT = {
    TaskStatus.COMPLETED: EventKind.COMPLETED,
    TaskStatus.FAILED: EventKind.FAILED,
    TaskStatus.CANCELLED: EventKind.CANCELLED,
}


class PoolState(msgspec.Struct, frozen=True):
    current: int
    busy: int
    idle: int
    min: int
    max: int
    paused: bool
    auto_scaling: bool


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


def _json_or_none(value: Any) -> msgspec.Raw | None:
    """A partial result attached to a handler's exception, if JSON can hold it."""
    if value is None:
        return None
    try:
        return msgspec.Raw(_encode_json(value))
    except Exception:
        return None


class WorkerPool:
    """The engine's workers. Reads the engine's collaborators (registry, backlog,
    journal, bus, stats) and never outlives it."""

    def __init__(self, engine: Engine) -> None:
        cfg = engine.config
        self._engine = engine
        self._wcfg = cfg.worker
        self._tcfg = cfg.task
        self._limiter = anyio.CapacityLimiter(max(1, cfg.task.max_concurrent_tasks))
        self.min_workers = min(cfg.worker.min_workers, cfg.task.max_concurrent_tasks)
        self.max_workers = min(cfg.worker.max_workers, cfg.task.max_concurrent_tasks)
        self.auto_scaling = cfg.worker.enable_auto_scaling
        self.paused = False
        self.workers: dict[int, Worker] = {}
        """The counted pool (``current``); retiring workers have left it."""
        self.live: dict[int, Worker] = {}
        """Every worker still running, retiring ones included."""
        self.idle: list[Worker] = []
        self._next_worker_id = 1
        self.busy = 0
        self._busy_sum = 0
        self._busy_samples = 0
        self._watch_next = math.inf
        self._watch_wake: anyio.Event | None = None
        self.finish_waiters: dict[str, anyio.Event] = {}
        self._idle_all: anyio.Event | None = None
        self._slice_start = time.monotonic()
        self._tg: TaskGroup | None = None
        self.loop_thread = threading.get_ident()
        self.done = 0
        self.failed = 0

    def start(self, tg: TaskGroup) -> None:
        """Bind to the engine's collaborators (now complete) and start the workers."""
        engine = self._engine
        self._tg = tg
        self.loop_thread = threading.get_ident()
        self._now = engine.clock.now
        self._type_of = engine.types.get
        self._registry = engine.registry
        self._backlog = engine.backlog
        self._changed: Callable[[Task], None] = engine.journal.changed
        self._journaling = engine.journaling
        self._publish = engine.bus.publish_uncoalesced  # never used for progress
        self._stats = engine.stats_data
        for _ in range(self.min_workers):
            self.spawn()

    # ------------------------------------------------------------------ workers
    def spawn(self) -> None:
        assert self._tg is not None
        w = Worker(self._next_worker_id)
        self._next_worker_id += 1
        self.workers[w.id] = w
        self.live[w.id] = w
        self._tg.start_soon(self._worker_main, w, name=f"worker-{w.id}")

    def retire(self, count: int) -> int:
        """Retire up to ``count`` idle workers; returns how many."""
        retired = 0
        while retired < count and self.idle:
            w = self.idle.pop()
            w.retire = True
            del self.workers[w.id]
            if w.waiter is not None:
                w.waiter.set()
            retired += 1
        return retired

    def wake(self, n: int) -> None:
        idle = self.idle
        while n > 0 and idle:
            w = idle.pop()
            if w.waiter is not None:
                w.waiter.set()
                w.waiter = None
            n -= 1

    def sample_busy(self) -> None:
        """One sample of the busy count for the scaler's average (taken 4x a second)."""
        self._busy_sum += self.busy
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
                self.finish(w, task, TaskStatus.CANCELLED, message="cancelled: shutting down")
            self.workers.pop(w.id, None)
            self.live.pop(w.id, None)
            if w in self.idle:
                self.idle.remove(w)

    async def _work(self, w: Worker, scope: anyio.CancelScope) -> None:
        backlog, idle = self._backlog, self.idle
        pop = backlog.pop
        while not w.retire:
            task = None if self.paused else pop()
            if task is None:
                idle.append(w)
                waiter = w.waiter = anyio.Event()
                if not self.paused:
                    backlog.idle()
                await waiter.wait()
                continue
            await self._run(w, task)
            if scope.cancel_called:
                return
            now = time.monotonic()
            if now - self._slice_start > SLICE_S / len(self.live):
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
        counts = self._registry.counts  # pending -> running: only the counts move
        counts[_PENDING] -= 1
        counts[_RUNNING] += 1
        self._stats.queue_wait.append(now - task.created_at)
        w.task = task
        ctx = w.ctx = TaskContext(self, task)
        self.busy += 1
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
                self.finish(w, task, TaskStatus.FAILED, error=TaskError("invalid_result", message))
                return
        self.finish(w, task, _COMPLETED, result=raw)

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
            self.finish(w, task, TaskStatus.CANCELLED, message="cancelled by request")
        elif reason == "lease":
            self._hand_back(w, task)
        else:
            self.finish(w, task, TaskStatus.CANCELLED, message="cancelled: shutting down")

    def _fail(
        self, w: Worker, task: Task, error: TaskError, result: msgspec.Raw | None = None
    ) -> None:
        if task.attempts <= task.max_retries and self._engine.accepting:
            self._schedule_retry(w, task, error)
        else:
            self.finish(w, task, TaskStatus.FAILED, error=error, result=result)

    def _release(self, w: Worker) -> None:
        w.task = None
        w.ctx = None
        w.cancel_reason = None
        w.deadline = math.inf
        self.busy -= 1
        if self.busy == 0 and self._idle_all is not None:
            self._idle_all.set()

    def finish(
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
            self.done += 1
        elif status is TaskStatus.FAILED:
            self.failed += 1
        self._registry.moved(task, old)
        if w is not None:
            self._release(w)
        stats = self._stats
        stats.record_finish(now)
        if task.started_at is not None:
            stats.run_time.append(now - task.started_at)
        if self._journaling:
            self._changed(task)
        self._publish(TaskEvent(_FINAL_EVENT[status], task))
        if self.finish_waiters:
            self.notify_finished(task)

    def notify_finished(self, task: Task) -> None:
        if self.finish_waiters:
            done = self.finish_waiters.pop(task.id, None)
            if done is not None:
                done.set()

    def _schedule_retry(self, w: Worker, task: Task, error: TaskError) -> None:
        old = task.transition(TaskStatus.PENDING)
        self._registry.moved(task, old)
        delay = min(MAX_RETRY_DELAY_S, self._tcfg.retry_backoff * (2 ** (task.attempts - 1)))
        task.error = error
        task.message = (
            f"retry {task.attempts}/{task.max_retries} in {delay:g}s: {error.type}: {error.message}"
        )
        task.progress = 0.0
        self._release(w)
        self._backlog.defer(task, delay)
        self._changed(task)
        self._engine.bus.publish(TaskEvent(EventKind.RETRYING, task))

    def _hand_back(self, w: Worker, task: Task) -> None:
        """This instance lost its lease on ``task`` (cluster store): stop it and give it
        back, pending, for whichever instance holds the lease now to run it again."""
        old = task.transition(TaskStatus.PENDING)
        self._registry.moved(task, old)
        task.message = "re-queued: this instance lost its lease"
        task.progress = 0.0
        self._release(w)
        self._backlog.defer(task, 0.0)
        self._changed(task)
        self._engine.bus.publish(TaskEvent(EventKind.RETRYING, task))

    async def wait_finished(self, task: Task) -> Task:
        if task.status not in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            done = self.finish_waiters.get(task.id)
            if done is None:
                done = self.finish_waiters[task.id] = anyio.Event()
            await done.wait()
        return task

    def running(self, task: Task) -> Worker | None:
        """The worker running ``task`` here, if any."""
        worker = self.live.get(task.worker or -1)
        return worker if worker is not None and worker.task is task else None

    async def interrupt(self, task: Task, reason: str, wait_s: float) -> None:
        """Interrupt ``task`` on its worker and wait (at most ``wait_s``) until it ends."""
        worker = self.running(task)
        if worker is None:
            return
        done = self.finish_waiters.get(task.id)
        if done is None:
            done = self.finish_waiters[task.id] = anyio.Event()
        worker.interrupt(reason)
        with anyio.move_on_after(wait_s):
            await done.wait()

    # ------------------------------------------------------------------ progress (TaskContext)
    def _task_progress(self, task: Task, pct: float, message: str | None) -> None:
        if task.status is not TaskStatus.RUNNING:
            return
        task.progress = pct
        if message is not None:
            task.message = message
        self._changed(task)
        self._engine.bus.publish(TaskEvent(EventKind.PROGRESS, task))

    def _task_log(self, task: Task, line: str) -> None:
        task.add_log(line)

    def _call_from_thread(self, fn: Callable[..., object], *args: object) -> None:
        anyio.from_thread.run_sync(fn, *args)

    # ------------------------------------------------------------------ timeouts
    async def watchdog(self) -> None:
        """Time tasks out: sleep until the earliest deadline, then interrupt the late ones."""
        while True:
            now = time.monotonic()
            nearest = math.inf
            for w in list(self.live.values()):
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

    # ------------------------------------------------------------------ shutdown
    async def drain(self, grace_s: float) -> None:
        """Let running tasks finish for up to ``grace_s``, interrupt the rest, and leave
        the threads of sync handlers that ignore it (see :data:`ABANDON_AFTER_S`)."""
        if self.busy:
            self._engine.log("info", f"waiting up to {grace_s:g}s for {self.busy} running task(s)")
            self._idle_all = anyio.Event()
            with anyio.move_on_after(grace_s):
                await self._idle_all.wait()
        for w in list(self.live.values()):
            w.interrupt("shutdown")
        stuck = [w for w in self.live.values() if w.thread_scope is not None]
        if not stuck:
            return
        with anyio.move_on_after(ABANDON_AFTER_S):
            while any(w.thread_scope is not None for w in stuck):
                self._idle_all = anyio.Event()
                await self._idle_all.wait()
        for w in stuck:
            scope = w.thread_scope
            if scope is not None and w.task is not None:
                self._engine.log(
                    "warning",
                    f"task {w.task.id}: its sync handler ignored the shutdown for"
                    f" {ABANDON_AFTER_S:g}s; its thread is abandoned",
                )
                scope.cancel()

    # ------------------------------------------------------------------ sizing
    async def scaler(self) -> None:
        while True:
            await anyio.sleep(self._wcfg.scale_check_interval)
            self.sample_busy()
            busy_avg = self._busy_sum / self._busy_samples
            self._busy_sum = self._busy_samples = 0
            if self.auto_scaling and not self.paused:
                self.scale_once(busy_avg)

    def scale_once(self, busy_avg: float | None = None) -> int:
        """Apply the scaling rule once (``busy_avg`` defaults to the busy count now)."""
        current = len(self.workers)
        decision = scaling_decision(
            current=current,
            busy_avg=self.busy if busy_avg is None else busy_avg,
            busy_now=self.busy,
            queued=len(self._backlog),
            min_workers=self.min_workers,
            max_workers=self.max_workers,
            up=self._wcfg.scale_up_threshold,
            down=self._wcfg.scale_down_threshold,
        )
        delta = decision.delta
        if delta > 0:
            for _ in range(delta):
                self.spawn()
            self.wake(delta)
        elif delta < 0:
            delta = -self.retire(-delta)
        if delta:
            self._record("scale", decision.reason, delta)
        return delta

    def _record(self, action: str, reason: str, delta: int) -> None:
        current = len(self.workers)
        engine = self._engine
        self._stats.scaling.append(ScalingDecision(engine.clock.now(), delta, current, reason))
        engine.log("info", reason)
        engine.bus.publish(
            PoolEvent(action, reason, current, self.min_workers, self.max_workers, self.paused)
        )

    def state(self) -> PoolState:
        current = len(self.workers)
        busy = sum(1 for w in self.workers.values() if w.task is not None)
        return PoolState(
            current=current,
            busy=busy,
            idle=current - busy,
            min=self.min_workers,
            max=self.max_workers,
            paused=self.paused,
            auto_scaling=self.auto_scaling,
        )

    def resize(self, *, min_workers: int | None = None, max_workers: int | None = None) -> None:
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
        current = len(self.workers)
        if current < lo:
            for _ in range(lo - current):
                self.spawn()
            self.wake(lo - current)
        elif current > hi:
            excess = current - hi - self.retire(current - hi)
            # Workers not parked idle (not started yet, between two tasks, or busy) retire
            # at their next loop check, a busy one once its task is done; free ones first.
            for w in sorted(self.workers.values(), key=lambda w: w.task is not None):
                if excess <= 0:
                    break
                if not w.retire:
                    w.retire = True
                    del self.workers[w.id]
                    excess -= 1
        self._record("resize", f"resized: min {lo}, max {hi} ({len(self.workers)} workers)", 0)

    def pause(self) -> None:
        if self._engine.accepting and not self.paused:
            self.paused = True
            self._record("pause", "dispatch paused", 0)

    def resume(self) -> None:
        if self._engine.accepting and self.paused:
            self.paused = False
            self.wake(len(self.idle))
            self._backlog.idle()
            self._record("resume", "dispatch resumed", 0)
