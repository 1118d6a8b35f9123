"""Handlers for the process-isolation tests: module-level, so that a worker process can
import them by name (``prochandlers:NAME``); light imports, so that children start fast."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

_HOARD: list[bytes] = []


def cpu(ctx: Any, payload: dict[str, Any]) -> int:
    total = 0
    for i in range(int(payload.get("n", 200_000))):
        total += i * i % 7
    return total


def chatty(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
    ctx.progress(50, "half way")
    ctx.log("a line from the child")
    return {"pid": os.getpid(), "attempt": ctx.attempt, "task_id": ctx.task_id}


async def async_answer(ctx: Any, payload: dict[str, Any]) -> int:
    ctx.progress(10)
    return 42


def boom(ctx: Any, payload: dict[str, Any]) -> None:
    raise ValueError("a bad thing happened")


def crash(ctx: Any, payload: dict[str, Any]) -> None:
    if payload.get("signal"):
        os.kill(os.getpid(), signal.SIGSEGV)
    os._exit(3)


def sleepy(ctx: Any, payload: dict[str, Any]) -> None:
    ctx.progress(1, "sleeping")
    time.sleep(3600)


def stubborn(ctx: Any, payload: dict[str, Any]) -> None:
    """Ignores every interruption: only a kill stops it."""
    while True:
        try:
            ctx.progress(1, "stubborn")
            time.sleep(10)
        except BaseException:  # the point of this handler: it ignores everything
            continue


def not_json(ctx: Any, payload: dict[str, Any]) -> object:
    return {"when": object()}


def hog(ctx: Any, payload: dict[str, Any]) -> int:
    """Keeps ``mb`` MiB alive in this process (touched, so resident)."""
    _HOARD.append(b"\x01" * (int(payload["mb"]) << 20))
    if payload.get("hold"):
        time.sleep(float(payload["hold"]))
    return os.getpid()


def pid(ctx: Any, payload: dict[str, Any]) -> int:
    return os.getpid()


def echo(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def parents(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """What ``ctx.parent_results`` holds in the child (issue 12)."""
    return dict(ctx.parent_results)
