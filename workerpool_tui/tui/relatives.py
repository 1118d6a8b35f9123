"""A task's parents and children, as the detail view lists them (issue 12).

Parents are the ids in the task's ``depends_on``; children are the tasks whose
``depends_on`` names it. With a local store the registry indexes children by parent
(a dict hit, never a walk of every task); in cluster mode, and attached to a server,
the dashboard's view of the tasks is bounded (``shared_tasks.VIEW_MAX``), and it is
searched instead.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ..core import Task, TaskStatus
from ..core.registry import Registry
from .shared_tasks import SharedTasks

MAX_CHILDREN = 200
"""Children listed at most (a fan-out of 10,000 says how many more there are)."""


class Relative(msgspec.Struct, frozen=True):
    relation: str
    """``parent`` or ``child``."""
    id: str
    type: str | None = None
    """``None``: the task is no longer tracked here."""
    status: TaskStatus | None = None


def relatives(
    task: Task,
    get: Callable[[str], Task | None],
    registry: Registry | None,
    shared: SharedTasks | None,
) -> tuple[list[Relative], int]:
    """``task``'s parents then children (oldest first), and how many children were left
    out past :data:`MAX_CHILDREN`."""
    out: list[Relative] = []
    for parent_id in task.depends_on or ():
        parent = get(parent_id)
        out.append(
            Relative("parent", parent_id)
            if parent is None
            else Relative("parent", parent_id, parent.type, parent.status)
        )
    if shared is None:
        assert registry is not None
        kids = registry.children_of(task.id)
    else:
        kids = sorted(
            (t for t in shared.active_and_final() if task.id in (t.depends_on or ())),
            key=lambda t: t.seq,
        )
    out.extend(Relative("child", k.id, k.type, k.status) for k in kids[:MAX_CHILDREN])
    return out, max(0, len(kids) - MAX_CHILDREN)
