"""``GET /api/v1/types`` and ``PATCH /api/v1/types/{name}``: task types, their per-type
settings and gates (``core/typelimits.py``), and changing the gates at run time."""

from __future__ import annotations

import time

from ..core.engine import Engine
from ..core.errors import NotFound
from .schemas import TypeInfo, TypeList, TypePatch


def type_list(engine: Engine) -> TypeList:
    running: dict[str, int] = {}
    for worker in engine.pool.live.values():
        if worker.task is not None:
            running[worker.task.type] = running.get(worker.task.type, 0) + 1
    return TypeList([type_info(engine, t.name, running.get(t.name, 0)) for t in engine.types])


def type_info(engine: Engine, name: str, running: int) -> TypeInfo:
    tt = engine.types.get(name)
    assert tt is not None
    ts = engine.config.task.types.get(name)
    limit = engine.gates.limits.get(name)
    return TypeInfo(
        name=name,
        description=tt.description,
        payload_schema=tt.payload_schema(),
        isolation=ts.isolation if ts is not None else "thread",
        concurrency=limit.concurrency if limit is not None else 0,
        rate_limit=limit.rate_limit if limit is not None else "",
        timeout=ts.timeout if ts is not None else None,
        max_retries=ts.max_retries if ts is not None else None,
        priority=ts.priority if ts is not None else None,
        paused=limit.paused if limit is not None else False,
        running=running,
        held=limit.held_count if limit is not None else 0,
        rate_limited=limit.rate_holding(time.monotonic()) if limit is not None else False,
    )


async def patch_type(engine: Engine, name: str, patch: TypePatch) -> TypeInfo:
    """Applied at once and kept by a durable store (``core/type_settings.py``)."""
    if name not in engine.types:
        raise NotFound(f"no task type {name!r} (known: {', '.join(engine.types.names())})")
    await engine.type_settings.patch(
        name, concurrency=patch.concurrency, rate_limit=patch.rate_limit, paused=patch.paused
    )
    return type_info(engine, name, engine.pool.running_count(name))
