"""Running one task on a worker: start it, await its handler (or its thread), and end it.

The run path of :class:`~.workers.WorkerPool`, in a module of its own: a task becomes
running, its handler runs, and the task ends completed, failed (or pending again for a
retry, through the backlog's :meth:`~.backlog.Backlog.defer`), or cancelled; progress and
log lines from the handler arrive here too. Hot path: keep it thin (``bench/pool.py``).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from .bus import TaskEvent
from .handlers import TaskContext, TaskInterrupted
from .models import STATUS_VALUE, EventKind, Task, TaskError, TaskStatus
from .pool import Worker
from .procpool import run_in_process

if TYPE_CHECKING:
    from .backlog import Backlog
    from .engine import Engine
    from .handlers import TaskType
    from .registry import Registry
    from .stats import Stats
    from .typelimits import TypeGates

MAX_RETRY_DELAY_S = 3600.0
"""The retry backoff doubles per attempt up to this (an hour), like Celery's
``retry_backoff_max``: a hundred retries must not mean waiting for 2^99 seconds."""

_encode_json = msgspec.json.Encoder().encode
_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_COMPLETED = TaskStatus.COMPLETED
_FAILED = TaskStatus.FAILED
_STARTED = EventKind.STARTED
_FINAL_EVENT = {
    TaskStatus.COMPLETED: EventKind.COMPLETED,
    TaskStatus.FAILED: EventKind.FAILED,
    TaskStatus.CANCELLED: EventKind.CANCELLED,
}


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


class TaskExecution:
    """The run path; :class:`~.workers.WorkerPool` is one (it holds the state below)."""

    _engine: Engine
    _tcfg: Any
    _limiter: anyio.CapacityLimiter
    _now: Callable[[], float]
    _type_of: Callable[[str], TaskType | None]
    _registry: Registry
    _backlog: Backlog
    _gates: TypeGates
    _changed: Callable[[Task], None]
    _journaling: bool
    _publish: Callable[[EventKind, Task], None]
    _stats: Stats
    _watch_next: float
    _watch_wake: anyio.Event | None
    _idle_all: anyio.Event | None
    busy: int
    done: int
    failed: int
    live: dict[int, Worker]
    finish_waiters: dict[str, anyio.Event]
    loop_thread: int

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
        if task.attempts == 1:
            self._engine.tally.on_started(task.type, now - task.created_at)
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
        self._publish(_STARTED, task)
        if tt is None:  # recovered from a store whose type is no longer registered
            self._fail(
                w,
                task,
                TaskError("unknown_task_type", f"task type {task.type!r} is not registered"),
            )
            return
        if task.depends_on and self._engine.store is not None:
            try:  # parents that ran on other instances: their results from the store
                ctx._parents = await self._engine.load_parent_results(task)
            except Exception as exc:
                message = f"cannot read its parents' results: {_exc_message(exc)}"
                self._fail(w, task, TaskError("parent_results_unavailable", message))
                return
            if w.cancel_reason is not None:
                self._interrupted(w, task)
                return
        procs = self._engine.procs
        if procs is not None and tt.isolation == "process":
            await run_in_process(self, procs, w, task, tt, ctx._parents)
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
        if self._gates.limits and w.task is not None:
            self._gates.ended(w.task)
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
            if w is not None:
                w.done += 1
        elif status is _FAILED:
            self.failed += 1
            if w is not None:
                w.failed += 1
        self._registry.moved(task, old)
        if w is not None:
            self._release(w)
        stats = self._stats
        stats.record_finish(now)
        ran = None
        if task.started_at is not None:
            ran = now - task.started_at
            stats.run_time.append(ran)
        ran_here = ran if old is _RUNNING else None
        self._engine.tally.on_finished(task.type, STATUS_VALUE[status], ran_here)
        if self._journaling:
            self._changed(task)
        self._publish(_FINAL_EVENT[status], task)
        if self.finish_waiters:
            self.notify_finished(task)
        waiting = self._engine.waiting
        if waiting.children and task.id in waiting.children:
            waiting.parent_final(task)  # release or cancel its children (core/waiting.py)

    def notify_finished(self, task: Task) -> None:
        if self.finish_waiters:
            done = self.finish_waiters.pop(task.id, None)
            if done is not None:
                done.set()

    def _schedule_retry(self, w: Worker, task: Task, error: TaskError) -> None:
        old = task.transition(TaskStatus.PENDING)
        self._registry.moved(task, old)
        delay = min(MAX_RETRY_DELAY_S, self._tcfg.retry_backoff * (2 ** (task.attempts - 1)))
        started = task.started_at
        self._engine.tally.on_retry(task.type, None if started is None else self._now() - started)
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
        self._engine.log_feed.notify(task.id)

    def parent_results(self, task: Task) -> dict[str, Any]:
        return self._engine.parent_results(task)

    def _call_from_thread(self, fn: Callable[..., object], *args: object) -> None:
        anyio.from_thread.run_sync(fn, *args)
