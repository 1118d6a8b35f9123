"""The engine: worker pool, queue, registry, event bus and stats.

Imports nothing from the adapters (``tui``, ``server``) nor textual, rich, h11 or wsproto.
"""

from __future__ import annotations

from .engine import Engine, PoolState
from .errors import (
    AlreadyFinished,
    EngineError,
    InvalidRequest,
    NotFound,
    QueueFull,
    ShuttingDown,
    UnknownTaskType,
)
from .models import EventKind, Task, TaskError, TaskSpec, TaskStatus, TaskView, task_view

__all__ = [
    "AlreadyFinished",
    "Engine",
    "EngineError",
    "EventKind",
    "InvalidRequest",
    "NotFound",
    "PoolState",
    "QueueFull",
    "ShuttingDown",
    "Task",
    "TaskError",
    "TaskSpec",
    "TaskStatus",
    "TaskView",
    "UnknownTaskType",
    "task_view",
]
