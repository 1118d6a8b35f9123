"""A task's log lines, read from a line number on and followed (long poll).

A task keeps its last ``TASK_LOG_LINES`` lines; ``Task.logs_dropped`` numbers them, so a
follower asks for the lines since the number it has seen (``next``) and misses none that
are still kept. :func:`read_logs` answers at once when there is something new or the task
is final; otherwise it waits, at most ``wait_s``, for a line or for the end: woken by the
:class:`LogFeed` for a task this instance holds, by polling the store for one it does not
(another instance of the cluster runs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import msgspec

from .models import Task, TaskStatus

if TYPE_CHECKING:
    from .engine import Engine

LOGS_WAIT_MAX_S = 30.0
"""The longest one read may wait for a line (a follower asks again)."""
REMOTE_POLL_S = 1.0
"""How often a task held by another cluster instance is read again while waiting."""


class LogSlice(msgspec.Struct, frozen=True, kw_only=True):
    """Lines ``since`` to ``next - 1`` of a task's log, and where the task stands."""

    id: str
    status: TaskStatus
    since: int
    """The number of the first line here: more than asked for when older lines were
    dropped (the task keeps its last lines only)."""
    next: int
    """Ask for the lines since this next time."""
    lines: list[str]
    final: bool
    """The task has ended: no more lines will come."""


def log_slice(task: Task, since: int) -> LogSlice:
    logs = task.logs
    first = task.logs_dropped
    total = first + (len(logs) if logs else 0)
    start = min(max(since, first), total)
    lines = list(logs)[start - first :] if logs and start < total else []
    return LogSlice(
        id=task.id,
        status=task.status,
        since=start,
        next=total,
        lines=lines,
        final=task.status.final,
    )


class LogFeed:
    """Wakes followers of a task when it logs a line (the worker calls :meth:`notify`)."""

    def __init__(self) -> None:
        self._waiters: dict[str, anyio.Event] = {}

    def notify(self, task_id: str) -> None:
        if self._waiters:
            event = self._waiters.pop(task_id, None)
            if event is not None:
                event.set()

    def event(self, task_id: str) -> anyio.Event:
        event = self._waiters.get(task_id)
        if event is None:
            event = self._waiters[task_id] = anyio.Event()
        return event

    def forget(self, task_id: str, event: anyio.Event) -> None:
        if self._waiters.get(task_id) is event:
            del self._waiters[task_id]


async def read_logs(engine: Engine, task_id: str, since: int, wait_s: float) -> LogSlice:
    """The lines of a task (id or unique prefix) from ``since``; with ``wait_s`` > 0 and
    nothing new yet, wait that long (at most :data:`LOGS_WAIT_MAX_S`) for a line or the
    task's end."""
    task = await engine.lookup(task_id)
    found = log_slice(task, since)
    wait_s = min(max(wait_s, 0.0), LOGS_WAIT_MAX_S)
    if found.lines or found.final or wait_s <= 0:
        return found
    with anyio.move_on_after(wait_s):
        while True:
            held = engine.get(task.id)
            if held is not None:
                await _wait_held(engine, held)
                task = held
            else:
                await anyio.sleep(REMOTE_POLL_S)
                task = await engine.lookup(task.id)
            found = log_slice(task, since)
            if found.lines or found.final:
                return found
    held = engine.get(task.id)
    return log_slice(held or task, since)


async def _wait_held(engine: Engine, task: Task) -> None:
    """Until ``task`` logs a line or ends (the caller bounds the wait)."""
    feed = engine.log_feed
    event = feed.event(task.id)
    try:
        async with anyio.create_task_group() as tg:

            async def ended() -> None:
                await engine.pool.wait_finished(task)
                tg.cancel_scope.cancel()

            tg.start_soon(ended)
            await event.wait()
            tg.cancel_scope.cancel()
    finally:
        feed.forget(task.id, event)
