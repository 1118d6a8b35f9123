"""Workers and the auto-scaling rule.

The rule, applied every ``scale_check_interval`` (also in the README):

    u = average busy workers over the interval / current workers
    grow    when u >= scale_up_threshold and tasks are queued:
            add min(max - current, queued, max(1, ceil(current / 2)))
    shrink  when u <= scale_down_threshold:
            target = max(min, ceil(busy_avg / scale_up_threshold))
            retire min(current - target, idle) idle workers

Growth is bounded by the work waiting (never more workers than queued tasks) and by
half the pool per check, so a burst doubles the pool at most every interval; shrinking
keeps enough workers for the average load to sit just below the grow threshold, so the
pool does not flap between the two.
"""

from __future__ import annotations

import math

import anyio
import msgspec

from .handlers import TaskContext
from .models import Task


class Worker:
    """A long-lived worker: one task at a time, reused until retired."""

    __slots__ = (
        "cancel_reason",
        "ctx",
        "deadline",
        "done",
        "failed",
        "id",
        "retire",
        "scope",
        "task",
        "thread_scope",
        "waiter",
    )

    def __init__(self, worker_id: int) -> None:
        self.id = worker_id
        self.task: Task | None = None
        self.ctx: TaskContext | None = None
        self.scope: anyio.CancelScope | None = None
        self.thread_scope: anyio.CancelScope | None = None
        """Around a sync handler's thread: shielded, so that a cancel waits for the handler
        to stop; cancelled only at shutdown, to abandon a thread that ignores it."""
        self.waiter: anyio.Event | None = None
        self.deadline = math.inf
        """``time.monotonic()`` by which the current task must finish."""
        self.cancel_reason: str | None = None
        """Why the current task's scope was cancelled: ``"cancelled"`` or ``"timeout"``."""
        self.retire = False
        self.done = 0
        """Tasks it completed."""
        self.failed = 0
        """Tasks it ran that failed for good."""

    def interrupt(self, reason: str) -> None:
        """Cancel the current task through the worker's cancel scope."""
        if self.task is None or self.cancel_reason is not None:
            return
        self.cancel_reason = reason
        if self.ctx is not None:
            self.ctx._cancel()
        if self.scope is not None:
            self.scope.cancel()


class PoolState(msgspec.Struct, frozen=True):
    current: int
    busy: int
    idle: int
    min: int
    max: int
    paused: bool
    auto_scaling: bool


class Decision(msgspec.Struct, frozen=True):
    delta: int
    reason: str


def scaling_decision(
    *,
    current: int,
    busy_avg: float,
    busy_now: int,
    queued: int,
    min_workers: int,
    max_workers: int,
    up: float,
    down: float,
) -> Decision:
    """What the scaler does this check; ``delta`` 0 means nothing (the reason says why)."""
    util = busy_avg / current if current else 1.0
    idle_now = current - busy_now
    if util >= up and queued > 0:
        room = max_workers - current
        if room <= 0:
            return Decision(
                0, f"at max_workers ({max_workers}): utilisation {util:.2f}, {queued} queued"
            )
        add = min(room, queued, max(1, math.ceil(current / 2)))
        return Decision(add, f"+{add} workers: utilisation {util:.2f} ≥ {up}, {queued} queued")
    if util <= down:
        target = max(min_workers, math.ceil(busy_avg / up))
        remove = min(current - target, idle_now)
        if remove > 0:
            return Decision(
                -remove, f"-{remove} workers: utilisation {util:.2f} ≤ {down}, {queued} queued"
            )
    return Decision(0, f"steady: utilisation {util:.2f}, {queued} queued")
