"""Shared helpers for the engine tests: configs, handler registries, condition waits.

Waiting is always on a condition re-checked after every bus delivery (every state change,
progress update and pool change is published), under a deadline: never sleep-and-hope.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio

from workerpool_tui.config import Config, load_config
from workerpool_tui.core import Engine, Task, TaskSpec, TaskStatus
from workerpool_tui.core.builtin import builtin_types
from workerpool_tui.core.bus import Delivery, Subscription, TaskEvent
from workerpool_tui.core.handlers import Handler, TaskType, TypeRegistry, task_type

DEADLINE_S = 10.0
"""How long any single wait in these tests may take before the test fails."""

_BASE: dict[str, dict[str, Any]] = {
    "server": {"enabled": False},
    "store": {"path": ""},
    "worker": {
        "min_workers": 2,
        "max_workers": 4,
        "enable_auto_scaling": False,
        "scale_check_interval": "1h",
        "shutdown_timeout": "5s",
    },
    "task": {
        "queue_capacity": 100,
        "max_concurrent_tasks": 10,
        "max_tracked_tasks": 1000,
        "default_task_timeout": "30s",
        "retry_backoff": "10ms",
    },
}


def make_config(**sections: Mapping[str, Any]) -> Config:
    """A validated test config: memory store, no auto-scaling, small sizes, plus overrides."""
    tree: dict[str, Any] = {name: dict(values) for name, values in _BASE.items()}
    for name, values in sections.items():
        tree.setdefault(name, {}).update(values)
    return load_config(None, environ={}, overrides=tree)


def registry_with(handlers: Mapping[str, Handler] | None = None) -> TypeRegistry:
    """The built-in types plus test handlers (no entry points, no config handlers)."""
    extra: Iterable[TaskType] = (task_type(n, h) for n, h in (handlers or {}).items())
    return TypeRegistry([*builtin_types(), *extra])


def make_engine(
    handlers: Mapping[str, Handler] | None = None, config: Config | None = None, **kw: Any
) -> Engine:
    return Engine(config or make_config(), types=registry_with(handlers), **kw)


async def wait_until(engine: Engine, predicate: Callable[[], bool], what: str = "") -> None:
    """Wait, with a deadline, until ``predicate()`` holds, re-checking after each bus event."""
    async with engine.bus.subscribe(maxsize=100_000, name="test-wait") as sub:
        try:
            with anyio.fail_after(DEADLINE_S):
                while not predicate():
                    await sub.get_batch()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what or predicate}") from None


async def wait_final(engine: Engine, task: Task | str) -> Task:
    task_id = task if isinstance(task, str) else task.id
    with anyio.fail_after(DEADLINE_S):
        return await engine.wait_finished(task_id)


async def wait_all_final(engine: Engine, tasks: Iterable[Task]) -> None:
    for task in tasks:
        await wait_final(engine, task)


async def submit(
    engine: Engine, type_: str, payload: dict[str, Any] | None = None, **kw: Any
) -> Task:
    return await engine.submit(TaskSpec(type=type_, payload=payload or {}, **kw))


def task_events(batch: Iterable[Delivery]) -> list[TaskEvent]:
    return [d for d in batch if isinstance(d, TaskEvent)]


def drain(sub: Subscription) -> list[Delivery]:
    """Everything a subscription holds now (``get_nowait`` until empty)."""
    out: list[Delivery] = []
    while True:
        batch = sub.get_nowait()
        if not batch:
            return out
        out.extend(batch)


def statuses(tasks: Iterable[Task]) -> list[TaskStatus]:
    return [t.status for t in tasks]


# ------------------------------------------------------------------ processes (Linux /proc)
def child_pids() -> set[int]:
    """Direct children of this process (every thread's ``children`` list; where the kernel
    has no such list, every process whose parent is this one)."""
    lists = list(Path("/proc/self/task").glob("*/children"))
    if not lists:
        me = str(os.getpid())
        return {
            int(entry)
            for entry in os.listdir("/proc")
            if entry.isdigit() and (fields := _stat_fields(int(entry))) and fields[1] == me
        }
    pids: set[int] = set()
    for path in lists:
        try:
            pids.update(int(p) for p in path.read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def live_group_members(pgid: int) -> set[int]:
    """Processes of group ``pgid`` that are still alive (zombies are dead, not yet reaped)."""
    members: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            members.add(int(entry))
    return members


def describe(pid: int) -> str:
    """A process's state, parent, group and command line, for failure messages."""
    fields = _stat_fields(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmdline = "?"
    if fields is None:
        return f"{pid}: gone"
    return f"{pid}: state {fields[0]} ppid {fields[1]} pgrp {fields[2]} cmd {cmdline!r}"


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll an outside condition (the kernel's process table) under a deadline."""
    try:
        with anyio.fail_after(DEADLINE_S):
            # The process table has no event to wait on: poll it, with a deadline.
            while not predicate():  # noqa: ASYNC110
                await anyio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def wait_for_sync(predicate: Callable[[], bool], what: str) -> None:
    """:func:`wait_for` outside an event loop (a signal is delivered, not obeyed at once)."""
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
