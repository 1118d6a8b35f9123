"""How a task's values read in the table and the detail view (plain text, no widgets)."""

from __future__ import annotations

from ...core import Task, TaskStatus

BAR_WIDTH = 10


def duration(seconds: float) -> str:
    """A compact duration: ``850ms``, ``12.3s``, ``4m05s``, ``2h13m``."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        m, s = divmod(int(seconds), 60)
        return f"{m}m{s:02d}s"
    h, rem = divmod(int(seconds), 3600)
    return f"{h}h{rem // 60:02d}m"


def progress_parts(pct: float, width: int = BAR_WIDTH) -> str:
    """``━━━━━━━───  70%``: filled and empty parts of the bar, then the percentage."""
    filled = round(width * max(0.0, min(100.0, pct)) / 100)
    return "━" * filled + "─" * (width - filled) + f" {pct:3.0f}%"


def age_or_duration(task: Task, now: float) -> str:
    """Pending: time waiting (or when it runs, if it waits for a time, or ``blocked``
    while it waits for its parents); running: time running; final: how long it ran."""
    if task.status is TaskStatus.PENDING:
        if task.blocked > 0:
            return "blocked"
        if task.run_at is not None and task.run_at > now:
            return "in " + duration(task.run_at - now)  # "runs in": the column is narrow
        return "wait " + duration(now - task.created_at)
    if task.status is TaskStatus.RUNNING and task.started_at is not None:
        return "run " + duration(now - task.started_at)
    if task.finished_at is not None and task.started_at is not None:
        return duration(task.finished_at - task.started_at)
    if task.finished_at is not None:
        return "never ran"
    return "-"


def is_live(task: Task) -> bool:
    """Whether the task's time column moves on its own."""
    return task.status is TaskStatus.PENDING or task.status is TaskStatus.RUNNING
