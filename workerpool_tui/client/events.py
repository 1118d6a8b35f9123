"""``watch``'s lines: one a server message, in fixed columns.

::

    10:20:25.545  created    736f96a05740975c  example_task       pending
    10:20:25.797  progress   736f96a05740975c  example_task       running     25%  step 1/4
    10:20:26.552  completed  736f96a05740975c  example_task       completed  1.0s
    10:20:27.001  pool       scale_up: 7 workers (min 5, max 50) — +2 workers: ...

Time, event, id (in full, as in every table), type and status are columns of fixed
width, so that what follows them lines up; the status is the one the event leaves the
task in. The type column is as wide as the longest type seen so far (at least
:data:`TYPE_WIDTH`). Each task's end is printed once: a progress report that says 100%,
or that arrives when its task is no longer running, is not printed, because the line of
the task's next status change (``completed``, ``failed``, ``retrying``, ...) follows it:
status changes are never dropped (SPEC §7). ``stats`` messages (about once a second)
are not printed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text

from .render import STATUS_STYLE, duration, status_text

EVENT_STYLE = {
    "created": "yellow",
    "started": "cyan",
    "progress": "dim cyan",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "retrying": "bold yellow",
    "snapshot": "bold",
    "pool": "bold blue",
    "resync": "bold yellow",
    "bulk": "bold magenta",
}
FINAL = frozenset({"completed", "failed", "cancelled"})
STATUS_AFTER = {
    "created": "pending",
    "started": "running",
    "progress": "running",
    "retrying": "pending",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
"""The status each event leaves its task in. The task an event carries may have moved on
by the time the server encoded it (a ``started`` that failed at once arrives ``failed``),
so the status column shows what the event itself says."""
EVENT_WIDTH = 9
"""The longest event names: ``completed``, ``cancelled``."""
ID_WIDTH = 16
TYPE_WIDTH = 18
STATUS_WIDTH = max(len(s) for s in STATUS_STYLE)
GAP = "  "


class EventLines:
    """Turns each decoded WebSocket message into a line, or ``None`` if it is not shown."""

    def __init__(self) -> None:
        self.type_width = TYPE_WIDTH

    def line(self, message: dict[str, Any], now: datetime | None = None) -> Text | None:
        kind = message.get("type")
        if kind == "task":
            return self._task(message, now)
        if kind == "snapshot":
            self._widen(message.get("tasks") or [])
            counts = (message.get("stats") or {}).get("tasks") or {}
            return self._head("snapshot", now).append(
                f"{len(message.get('tasks') or [])} recent tasks;"
                f" {counts.get('running', 0)} running, {counts.get('pending', 0)} pending,"
                f" {counts.get('total', 0)} tracked"
            )
        if kind == "pool":
            line = self._head("pool", now).append(
                f"{message.get('action')}: {message.get('current')} workers"
                f" (min {message.get('min_workers')}, max {message.get('max_workers')})"
                + (", paused" if message.get("paused") else "")
            )
            if message.get("reason"):
                line.append(f" — {message['reason']}", style="dim")
            return line
        if kind == "resync":
            return self._head("resync", now).append(
                "fell behind the server; a fresh snapshot follows"
            )
        if kind == "bulk":
            skipped = message.get("skipped") or {}
            text = (
                f"{message.get('action')}: {message.get('changed')} of"
                f" {message.get('matched')} matched changed"
            )
            if isinstance(skipped, dict) and skipped:
                text += " (" + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())) + ")"
            return self._head("bulk", now).append(text)
        return None

    def _widen(self, tasks: list[Any]) -> None:
        for task in tasks:
            if isinstance(task, dict):
                self.type_width = max(self.type_width, len(str(task.get("type", ""))))

    def _head(self, event: str, now: datetime | None) -> Text:
        stamp = (now or datetime.now()).strftime("%H:%M:%S.%f")[:-3]
        line = Text(stamp + GAP, style="dim")
        line.append(f"{event:<{EVENT_WIDTH}}", style=EVENT_STYLE.get(event, ""))
        line.append(GAP)
        return line

    def _task(self, message: dict[str, Any], now: datetime | None) -> Text | None:
        task = message.get("task") or {}
        event = str(message.get("event", ""))
        current = str(task.get("status", ""))
        status = STATUS_AFTER.get(event, current)
        progress = task.get("progress")
        if not isinstance(progress, (int, float)):
            progress = 0.0
        if event == "progress" and (current != "running" or progress >= 100):
            return None  # the task's next status change follows with the same news
        self._widen([task])
        line = self._head(event, now)
        line.append(f"{task.get('id', '')!s:<{ID_WIDTH}}{GAP}")
        line.append(f"{task.get('type', '')!s:<{self.type_width}}{GAP}")
        line.append_text(status_text(status))
        details: list[tuple[str, str]] = []
        if event == "progress":
            details.append((f"{progress:3.0f}%", ""))
            if task.get("message"):
                details.append((str(task["message"]), "dim"))
        elif event in FINAL:
            details.append((duration(task), ""))
        error = task.get("error")
        if isinstance(error, dict) and event in ("failed", "retrying"):
            details.append((f"{error.get('type')}: {error.get('message')}", "red"))
        if details:
            line.append(" " * (STATUS_WIDTH - len(status)))
            for text, style in details:
                line.append(GAP)
                line.append(text, style=style)
        return line
