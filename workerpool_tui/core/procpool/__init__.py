"""Process isolation: tasks of ``isolation = "process"`` types run in a pool of long-lived
worker processes (:mod:`.pool` the engine's side, :mod:`.child` the worker's, and
:mod:`.protocol` what crosses between them).

Only :mod:`.pool` and :func:`run_in_process` are imported by the engine; the child imports
:mod:`.protocol` and the handler contract, not the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..models import TaskStatus

if TYPE_CHECKING:
    from ...config import Config
    from ..execution import TaskExecution
    from ..handlers import TaskType, TypeRegistry
    from ..models import Task
    from ..pool import Worker
    from .pool import ProcessPool


async def run_in_process(
    ex: TaskExecution,
    procs: ProcessPool,
    w: Worker,
    task: Task,
    tt: TaskType,
    ctx_parents: dict[str, Any] | None = None,
) -> None:
    """The process path of ``TaskExecution._run``: the task's handler runs in a child,
    its progress and log lines come back here, and the task ends as a thread's would.
    A cancellation (cancel, timeout, shutdown) is re-raised once the child has stopped."""
    from .pool import ProcessTaskError

    assert tt.target is not None
    parents: dict[str, Any] | None = None  # ctx.parent_results, sent with the task
    if task.depends_on:
        parents = ctx_parents if ctx_parents is not None else ex.parent_results(task)
    try:
        raw = await procs.run(
            task.id,
            tt.target,
            task.payload,
            task.attempts,
            progress=lambda pct, message: ex._task_progress(task, pct, message),
            log=lambda line: ex._task_log(task, line),
            parents=parents,
        )
    except ProcessTaskError as exc:
        if w.cancel_reason is not None:
            ex._interrupted(w, task)
        else:
            ex._fail(w, task, exc.error, result=exc.result)
        return
    if w.cancel_reason is not None:
        ex._interrupted(w, task)
        return
    ex.finish(w, task, TaskStatus.COMPLETED, result=raw)


def process_pool(
    types: TypeRegistry, cfg: Config, log: Callable[[str, str], None]
) -> ProcessPool | None:
    """Mark the types ``[task.types.NAME] isolation = "process"`` names (in ``types``),
    and the pool their tasks run in; ``None`` when no type runs in a process. A process
    type whose handler cannot be imported by name is a configuration error."""
    import os

    import msgspec

    from ...config import ConfigError
    from ...config_types import parse_bytes
    from .pool import ProcessPool

    for name, ts in cfg.task.types.items():
        tt = types.get(name)
        if tt is not None and ts.isolation != tt.isolation:
            types.add(msgspec.structs.replace(tt, isolation=ts.isolation))
    process_types = [t for t in types if t.isolation == "process"]
    for tt in process_types:
        if tt.target is None:
            raise ConfigError(
                f"{cfg.source}: task.types.{tt.name}.isolation: a process type's handler must"
                " be importable by name (a module-level function, 'package.module:function')"
            )
    if not process_types:
        return None
    w = cfg.worker
    return ProcessPool(
        w.processes or os.cpu_count() or 1,
        max_tasks=w.max_tasks_per_process,
        memory_limit=parse_bytes(w.process_memory_limit),
        kill_grace=w.kill_grace,
        log=log,
    )
