"""The built-in task types: ``example_task``, ``long_running_task``, ``default_task``."""

from __future__ import annotations

import hashlib
from typing import Any

import anyio
import msgspec

from .handlers import TaskContext, TaskType, task_type


class LongRunningPayload(msgspec.Struct, forbid_unknown_fields=True):
    duration: float = msgspec.field(default=30.0)
    steps: int = 100

    def __post_init__(self) -> None:
        if self.duration < 0:
            raise ValueError("duration must be >= 0")
        if self.steps < 1:
            raise ValueError("steps must be >= 1")


class DefaultPayload(msgspec.Struct):
    """Any object; ``sleep`` (seconds) and ``fail`` are honoured for demos."""

    sleep: float = 0.0
    fail: bool = False

    def __post_init__(self) -> None:
        if self.sleep < 0:
            raise ValueError("sleep must be >= 0")


async def example_task(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A quick demo task: about a second, four progress steps."""
    steps = 4
    for i in range(1, steps + 1):
        await anyio.sleep(0.25)
        ctx.progress(100 * i / steps, f"step {i}/{steps}")
    return {"steps": steps}


async def long_running_task(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Runs for `duration` seconds in `steps` steps, reporting progress at each; cancellable."""
    p = msgspec.convert(payload, LongRunningPayload)
    pause = p.duration / p.steps
    for i in range(1, p.steps + 1):
        await anyio.sleep(pause)
        ctx.progress(100 * i / p.steps, f"step {i}/{p.steps}")
    return {"duration": p.duration, "steps": p.steps}


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: what ``default_task`` sizes and hashes."""
    return msgspec.json.encode(value, order="sorted")


class DemoFailure(Exception):
    """Raised by ``default_task`` when asked to fail."""


async def default_task(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Returns any payload with its size and sha256; honours `sleep` and `fail`."""
    sleep = payload.get("sleep")
    if isinstance(sleep, (int, float)) and not isinstance(sleep, bool) and sleep > 0:
        await anyio.sleep(float(sleep))
    if payload.get("fail") is True:
        raise DemoFailure("failed on request (payload.fail = true)")
    body = canonical_json(payload)
    return {"payload": payload, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def builtin_types() -> list[TaskType]:
    return [
        task_type("example_task", example_task),
        task_type("long_running_task", long_running_task, payload_type=LongRunningPayload),
        task_type("default_task", default_task, payload_type=DefaultPayload),
    ]
