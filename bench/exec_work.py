"""The work of ``bench/exec.py``, in a module of its own so that a worker process (and a
``ProcessPoolExecutor``) imports it by name, without the benchmark's imports."""

from __future__ import annotations

from typing import Any

from workerpool_tui.core.handlers import TaskInterrupted


def spin(n: int) -> int:
    """A pure-Python loop: CPU-bound, holds the GIL all along."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def burn(ctx: Any, payload: dict[str, Any]) -> int:
    return spin(int(payload["n"]))


def noop(ctx: Any, payload: dict[str, Any]) -> None:
    return None


def deaf(ctx: Any, payload: dict[str, Any]) -> None:
    """CPU-bound and ignores cancellation: only a kill stops it."""
    ctx.progress(1)
    while True:
        try:
            spin(100_000)
        except TaskInterrupted:
            continue
