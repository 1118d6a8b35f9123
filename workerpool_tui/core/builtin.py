"""The built-in task types: ``example_task``, ``long_running_task``, ``default_task``."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import anyio
import msgspec

from . import wholenum
from .handlers import TaskContext, TaskType, task_type

MAX_DEMO_SECONDS = 86_400.0
"""The longest ``duration`` / ``sleep`` a built-in demo task takes (a day)."""
MAX_STEPS = 10_000
"""``long_running_task`` steps: each is a sleep and a progress event, so a client cannot ask
for a worker spinning through 10^12 of them."""


class LongRunningPayload(msgspec.Struct, forbid_unknown_fields=True):
    duration: Annotated[float, msgspec.Meta(ge=0, le=MAX_DEMO_SECONDS)] = 30.0
    steps: Annotated[int, msgspec.Meta(ge=1, le=MAX_STEPS)] = 100


class DefaultPayload(msgspec.Struct):
    """Any object; ``sleep`` (seconds) and ``fail`` are honoured for demos."""

    sleep: Annotated[float, msgspec.Meta(ge=0, le=MAX_DEMO_SECONDS)] = 0.0
    fail: bool = False


async def example_task(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A quick demo task: about a second, four progress steps."""
    steps = 4
    for i in range(1, steps + 1):
        await anyio.sleep(0.25)
        ctx.progress(100 * i / steps, f"step {i}/{steps}")
    return {"steps": steps}


async def long_running_task(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Runs for `duration` seconds in `steps` steps, reporting progress at each; cancellable."""
    p = wholenum.convert(payload, LongRunningPayload)
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
