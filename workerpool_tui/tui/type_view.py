"""The engine's task types as the dashboard shows them (:class:`~.view_model.TypeInfo`):
the defaults a submission gets (the type's ``[task.types.NAME]`` settings over ``[task]``)
and the state of its gates now (concurrency, rate limit, pause, tasks held back)."""

from __future__ import annotations

import time

from ..core import Engine
from .view_model import TypeInfo


def type_infos(engine: Engine) -> list[TypeInfo]:
    """Every registered type, with its defaults and its gates' state."""
    task_cfg = engine.config.task
    out = []
    for t in engine.types:
        ts = task_cfg.types.get(t.name)
        out.append(
            TypeInfo(
                t.name,
                t.description,
                t.payload_schema(),
                _limits(engine, t.name, t.isolation),
                priority=ts.priority if ts and ts.priority is not None else 0,
                timeout_s=ts.timeout
                if ts and ts.timeout is not None
                else task_cfg.default_task_timeout,
                max_retries=ts.max_retries
                if ts and ts.max_retries is not None
                else task_cfg.default_max_retries,
            )
        )
    return out


def _limits(engine: Engine, name: str, isolation: str) -> str:
    """``process · running 2/4 · rate 10/s (holding tasks back) · paused · 3 waiting``."""
    parts = ["process"] if isolation == "process" else []
    limit = engine.gates.limits.get(name)
    if limit is not None:
        if limit.concurrency:
            parts.append(f"running {limit.running}/{limit.concurrency}")
        if limit.rate_limit:
            holding = " (holding tasks back)" if limit.rate_holding(time.monotonic()) else ""
            parts.append(f"rate {limit.rate_limit}{holding}")
        if limit.paused:
            parts.append("paused")
        if limit.held_count:
            parts.append(f"{limit.held_count} waiting")
    return " · ".join(parts)
