"""The task model (SPEC §4), its state machine, and the values that cross layers.

``Task`` is the engine's own mutable record: a ``msgspec.Struct`` with ``gc=False`` so that
100,000 tracked tasks stay small. Adapters never mutate it; they read it, or take a
:class:`TaskView` (its wire form, with RFC 3339 timestamps) from :func:`task_view`.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from datetime import datetime, timezone
from typing import Any

import msgspec


class TaskStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


STATUS_VALUE: dict[TaskStatus, str] = {status: status.value for status in TaskStatus}
"""``status.value`` as a dict lookup: on 3.11 an enum's ``value`` is a Python descriptor,
a few hundred instructions a read (hot path: a task's end)."""
FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

#: The legal transitions of SPEC §4. ``running → pending`` only for a retry.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.PENDING}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the state machine does not allow; a bug, never user input."""


class EventKind(str, enum.Enum):
    CREATED = "created"
    STARTED = "started"
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRYING = "retrying"


class TaskError(msgspec.Struct, frozen=True, gc=False):
    """Why a task failed: ``type`` is the exception name, or ``timeout`` / ``interrupted``."""

    type: str
    message: str
    traceback: str | None = None


_encode_json = msgspec.json.Encoder().encode
_decode_json = msgspec.json.Decoder().decode

#: How many log lines a task keeps (oldest dropped first).
TASK_LOG_LINES = 200


class Task(msgspec.Struct, gc=False, kw_only=True):
    """One task's record. Mutated only by the engine, through :meth:`transition`."""

    id: str
    type: str
    payload: dict[str, Any]
    status: TaskStatus = TaskStatus.PENDING
    priority: int = 0
    progress: float = 0.0
    message: str | None = None
    result_json: msgspec.Raw | None = None
    """The handler's result as JSON, kept encoded: bytes are no work for the garbage
    collector, whereas a result holding a dict or list is one more object it walks on
    every full pass (100,000 of them took 70 ms a pass); and adapters send it as is.
    :attr:`result` gives the value."""
    error: TaskError | None = None
    attempts: int = 0
    max_retries: int = 0
    timeout_s: float = 300.0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    worker: int | None = None
    retry_of: str | None = None
    seq: int = 0
    """Submission order; FIFO among equal priorities, and the registry's age order."""
    logs: deque[str] | None = None
    """The handler's own log lines, created on the first line."""
    logs_dropped: int = 0
    """Lines dropped from the front of :attr:`logs` (so line ``i`` of it is line
    ``logs_dropped + i`` of the task: followers ask for lines since a number)."""
    run_at: float | None = None
    """Not before this (epoch seconds): a retry waiting out its backoff (in the cluster
    store; the local stores keep that wait in memory)."""
    instance: str | None = None
    """The name of the cluster instance that ran it last (``None`` outside a cluster)."""
    depends_on: tuple[str, ...] | None = None
    """The ids of the tasks it waits for (each must complete before it runs)."""
    unique_key: str | None = None
    unique_until: float | None = None
    """With :attr:`unique_key`: the end of the uniqueness window (``None``: until final)."""
    blocked: int = 0
    """How many of :attr:`depends_on` have not completed yet (recomputed at start)."""

    @property
    def result(self) -> Any:
        """The handler's result (decoded from :attr:`result_json` on each read)."""
        raw = self.result_json
        return None if raw is None else _decode_json(raw)

    @result.setter
    def result(self, value: Any) -> None:
        """Set from a JSON value (``TypeError`` for anything JSON cannot hold)."""
        self.result_json = None if value is None else msgspec.Raw(_encode_json(value))

    def transition(self, new: TaskStatus) -> TaskStatus:
        """Move to ``new``; an illegal move raises and changes nothing. Returns the old status."""
        old = self.status
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(f"task {self.id}: {old.value} -> {new.value} is not allowed")
        self.status = new
        return old

    def add_log(self, line: str) -> None:
        if self.logs is None:
            self.logs = deque(maxlen=TASK_LOG_LINES)
        elif len(self.logs) == TASK_LOG_LINES:
            self.logs_dropped += 1
        self.logs.append(line)


class TaskSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A validated submission, before it becomes a :class:`Task`."""

    type: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: int | None = None
    """``None``: the type's ``priority``, else 0."""
    timeout_s: float | None = None
    """``None``: ``task.default_task_timeout``."""
    max_retries: int | None = None
    """``None``: ``task.default_max_retries``."""
    retry_of: str | None = None
    run_at: float | None = None
    """Not before this (epoch seconds; ``None`` or a past time: now)."""
    depends_on: tuple[str, ...] = ()
    """Ids of tasks that must complete first; in a batch, ``"$N"`` is its N-th task."""
    unique_key: str | None = None
    unique_for: float | None = None
    """Seconds the key stays taken after submission (``None``: until the task is final)."""
    on_duplicate: str = "error"
    """``"error"`` (refuse, ``Duplicate``) or ``"return"`` (answer the existing task)."""


_SECONDS: dict[float, str] = {}
"""``YYYY-MM-DDTHH:MM:SS.`` by whole epoch second: formatting a datetime costs about 7 µs,
and the tasks of a listing or of the live events mostly share a few seconds."""


_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]
"""``000Z`` ... ``999Z``: a table instead of a format per timestamp."""


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC with milliseconds (``2026-11-28T13:28:18.123Z``)."""
    if ts is None:
        return None
    frac, whole = math.modf(ts)
    us = round(frac * 1_000_000)  # as datetime.fromtimestamp rounds: half to even
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:  # before 1970
        whole, us = whole - 1, us + 1_000_000
    prefix = _SECONDS.get(whole)
    if prefix is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        dt = datetime.fromtimestamp(whole, tz=timezone.utc)
        prefix = _SECONDS[whole] = dt.strftime("%Y-%m-%dT%H:%M:%S.")
    return prefix + _MILLIS[us // 1000]


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """The wire form of a task (SPEC §4), as the API and the WebSocket send it."""

    id: str
    type: str
    status: TaskStatus
    payload: dict[str, Any]
    priority: int
    progress: float
    message: str | None
    result: Any
    error: TaskError | None
    attempts: int
    max_retries: int
    timeout_s: float
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    worker: int | None
    retry_of: str | None
    run_at: str | None = None
    instance: str | None = None
    depends_on: list[str] = msgspec.field(default_factory=list)
    unique_key: str | None = None
    logs: list[str] = msgspec.field(default_factory=list)


def task_view(task: Task, *, with_logs: bool = True) -> TaskView:
    # (rfc3339 maps None to None too: a fresh task has no start, end nor run_at.)
    return TaskView(
        id=task.id,
        type=task.type,
        status=task.status,
        payload=task.payload,
        priority=task.priority,
        progress=task.progress,
        message=task.message,
        result=task.result_json,
        error=task.error,
        attempts=task.attempts,
        max_retries=task.max_retries,
        timeout_s=task.timeout_s,
        created_at=rfc3339(task.created_at),
        started_at=None if task.started_at is None else rfc3339(task.started_at),
        finished_at=None if task.finished_at is None else rfc3339(task.finished_at),
        worker=task.worker,
        retry_of=task.retry_of,
        run_at=None if task.run_at is None else rfc3339(task.run_at),
        instance=task.instance,
        depends_on=list(task.depends_on) if task.depends_on else [],
        unique_key=task.unique_key,
        logs=list(task.logs) if (with_logs and task.logs) else [],
    )
