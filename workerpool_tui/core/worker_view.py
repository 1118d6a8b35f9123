"""What each worker of this instance is doing: the read behind ``GET /api/v1/workers``
and the dashboard's Workers screen.

A worker runs one task at a time; its view says which (and since when), how many tasks
it finished and how many of them failed. Retiring workers still running their last task
are listed (state ``retiring``) until that task ends.
"""

from __future__ import annotations

import msgspec

from .models import TaskStatus
from .workers import WorkerPool


class WorkerInfo(msgspec.Struct, frozen=True):
    """One worker of this instance, as read now."""

    id: int
    state: str
    """``busy`` (running a task), ``idle``, or ``retiring`` (leaving the pool after its
    current task)."""
    task_id: str | None
    """The task it runs now."""
    task_type: str | None
    running_since: float | None
    """When the current task started (epoch seconds)."""
    done: int
    """Tasks it completed."""
    failed: int
    """Tasks it ran that failed (for good: a retry is not counted)."""


_RUNNING = TaskStatus.RUNNING


def _state(running: bool, *, retiring: bool) -> str:
    if retiring:
        return "retiring"
    return "busy" if running else "idle"


def worker_infos(pool: WorkerPool) -> list[WorkerInfo]:
    """Every live worker of ``pool``, by id."""
    counted = pool.workers
    out = []
    for wid in sorted(pool.live):
        w = pool.live[wid]
        task = w.task if w.task is not None and w.task.status is _RUNNING else None
        state = _state(task is not None, retiring=wid not in counted or w.retire)
        out.append(
            WorkerInfo(
                id=wid,
                state=state,
                task_id=task.id if task is not None else None,
                task_type=task.type if task is not None else None,
                running_since=task.started_at if task is not None else None,
                done=w.done,
                failed=w.failed,
            )
        )
    return out
