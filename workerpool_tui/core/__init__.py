"""The engine: worker pool, queue, registry, event bus and stats.

Imports nothing from the adapters (``tui``, ``server``) nor textual, rich, httptools, uvloop
or wsproto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AlreadyFinished,
    AmbiguousId,
    EngineError,
    InvalidRequest,
    NotFound,
    QueueFull,
    ShuttingDown,
    UnknownTaskType,
)
from .models import EventKind, Task, TaskError, TaskSpec, TaskStatus, TaskView, task_view

if TYPE_CHECKING:
    from .engine import Engine, PoolState


def __getattr__(name: str) -> Any:
    # The engine (and anyio with it) is imported on first use, so that the store's
    # writer process, which needs only the models, starts in a fraction of the time.
    if name in ("Engine", "PoolState"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlreadyFinished",
    "AmbiguousId",
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
