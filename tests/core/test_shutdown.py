"""Lifecycle (SPEC §6): closing the engine drains, cancels the rest, and leaks nothing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest
from enginekit import (
    DEADLINE_S,
    child_pids,
    describe,
    live_group_members,
    make_config,
    wait_for,
    wait_for_sync,
    wait_until,
)

from workerpool_tui.core import Engine, ShuttingDown, TaskSpec, TaskStatus
from workerpool_tui.core.builtin import builtin_types
from workerpool_tui.core.bus import LogEvent
from workerpool_tui.core.handlers import TaskContext, TypeRegistry, task_type
from workerpool_tui.core.shell import shell_task_type


class Handlers:
    """An async blocker, a cooperative sync (threaded) handler, and their bookkeeping."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.finally_ran: list[str] = []
        self.thread_stopped = threading.Event()

    async def block(self, ctx: TaskContext, payload: dict[str, Any]) -> str:
        ctx.progress(1, "blocking")
        try:
            await self.release.wait()
            return "released"
        finally:
            self.finally_ran.append(ctx.task_id)

    def spin(self, ctx: TaskContext, payload: dict[str, Any]) -> str:
        ctx.progress(1, "spinning in a thread")
        try:
            ctx.cancel_requested.wait(DEADLINE_S)
            return "stopped"
        finally:
            self.thread_stopped.set()

    def registry(self) -> TypeRegistry:
        return TypeRegistry(
            [
                *builtin_types(),
                shell_task_type(),
                task_type("block", self.block),
                task_type("spin", self.spin),
            ]
        )


def _config(grace: str, workers: int = 4) -> Any:
    return make_config(
        worker={"min_workers": workers, "max_workers": workers, "shutdown_timeout": grace},
        task={"allow_shell": True},
    )


def test_shutdown_leaves_no_task_thread_or_child_process_behind() -> None:
    threads_before = set(threading.enumerate())
    children_before = child_pids()
    seen: dict[str, Any] = {}

    async def main() -> None:
        tasks_before = asyncio.all_tasks()
        h = Handlers()
        engine = Engine(_config("100ms"), types=h.registry())
        async with engine:
            running = await engine.submit_many(
                [
                    TaskSpec(type="block"),
                    TaskSpec(type="block"),
                    TaskSpec(type="spin"),
                    TaskSpec(type="shell_task", payload={"command": "sleep 300 & sleep 300"}),
                ]
            )
            queued = await engine.submit_many([TaskSpec(type="block")] * 3)
            await wait_until(engine, lambda: all(t.progress == 1.0 for t in running[:3]))
            shell_children: list[int] = []

            def shell_group_up() -> bool:
                new = child_pids() - children_before
                shell_children[:] = [p for p in new if len(live_group_members(p)) >= 2]
                return bool(shell_children)

            await wait_for(shell_group_up, "the shell task's process group")
            seen["pgid"] = shell_children[0]
            seen["during"] = len(asyncio.all_tasks() - tasks_before)
            subscription = engine.bus.subscribe(name="left-open")
        # Closed: every task final, nothing of the engine's left on the loop.
        seen["after"] = asyncio.all_tasks() - tasks_before
        seen["running"] = [(t.status, t.message) for t in running]
        seen["queued"] = [(t.status, t.message) for t in queued]
        seen["finally_ran"] = len(h.finally_ran)
        seen["thread_stopped"] = h.thread_stopped.is_set()
        seen["pool"] = engine.pool_state()
        seen["live"] = len(engine.pool.live)
        seen["sub_closed"] = subscription.closed
        with pytest.raises(ShuttingDown):
            engine.submit_nowait([TaskSpec(type="default_task")])

    anyio.run(main, backend="asyncio")

    assert seen["during"] > 4  # the workers and background jobs really were tasks
    assert seen["after"] == set()
    shutdown = (TaskStatus.CANCELLED, "cancelled: shutting down")
    assert seen["running"] == [shutdown] * 4
    assert seen["queued"] == [shutdown] * 3
    assert seen["finally_ran"] == 2
    assert seen["thread_stopped"] is True
    assert (seen["pool"].current, seen["pool"].busy, seen["live"]) == (0, 0, 0)
    assert seen["sub_closed"] is True

    # Threads: anyio's idle worker threads are told to stop when the loop ends; any thread
    # still alive after a join with a deadline would be a leak (e.g. a handler still running).
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(DEADLINE_S)
    assert [t.name for t in set(threading.enumerate()) - threads_before] == []
    # Child processes: the shell was reaped, and its whole group is gone.
    left = child_pids() - children_before
    assert left == set(), {p: describe(p) for p in left}
    # SIGKILL was sent to the whole group; the kernel takes a moment to carry it out.
    wait_for_sync(lambda: not live_group_members(seen["pgid"]), "the shell's group to die")


@pytest.mark.anyio
async def test_running_tasks_may_finish_within_the_grace_period() -> None:
    h = Handlers()
    engine = Engine(_config("10s", workers=2), types=h.registry())

    async def release_when_draining(sub: Any) -> None:
        # The engine announces the drain; only then is the running task allowed to finish.
        while True:
            batch = await sub.get_batch()
            if any(isinstance(e, LogEvent) and "waiting up to" in e.message for e in batch):
                break
        h.release.set()

    with anyio.fail_after(DEADLINE_S):
        async with anyio.create_task_group() as tg, engine:
            sub = engine.bus.subscribe(name="observer")
            finishing = (await engine.submit_many([TaskSpec(type="block")]))[0]
            await wait_until(engine, lambda: finishing.progress == 1.0)
            pending = await engine.submit_many([TaskSpec(type="block")] * 3)
            assert sum(t.status is TaskStatus.PENDING for t in pending) >= 2
            tg.start_soon(release_when_draining, sub)
            # Leaving the block shut the engine down.
    assert finishing.status is TaskStatus.COMPLETED
    assert finishing.result == "released"
    assert engine.closed
    assert not engine.accepting
    # Tasks still queued at shutdown were cancelled at once (memory store: nothing to keep).
    for task in pending:
        assert task.status in (TaskStatus.CANCELLED, TaskStatus.COMPLETED)
    assert any(t.status is TaskStatus.CANCELLED for t in pending)


@pytest.mark.anyio
async def test_shutdown_is_idempotent_and_pause_after_close_is_harmless() -> None:
    engine = Engine(_config("1s", workers=1), types=Handlers().registry())
    async with engine:
        await engine.shutdown()
        await engine.shutdown()
        assert engine.closed
        assert engine.pause().paused is True
        assert engine.resume().paused is True  # nothing resumes a closed engine


@pytest.mark.anyio
async def test_shutdown_cancels_a_task_waiting_out_its_retry_backoff() -> None:
    async def fails(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("again")

    cfg = make_config(task={"retry_backoff": "1h"})
    engine = Engine(cfg, types=TypeRegistry([*builtin_types(), task_type("fails", fails)]))
    async with engine:
        task = (await engine.submit_many([TaskSpec(type="fails", max_retries=5)]))[0]
        await wait_until(engine, lambda: task.attempts == 1 and task.status is TaskStatus.PENDING)
    assert task.status is TaskStatus.CANCELLED
    assert task.message == "cancelled: shutting down"
    assert len(engine.queue) == 0
    assert engine.stats().tasks.pending == 0


@pytest.mark.anyio
async def test_shutdown_abandons_a_sync_handler_that_ignores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread cannot be stopped from outside: a sync handler that never looks at its
    context gets a bounded time to notice the shutdown, then its thread is left to finish
    on its own and the engine closes anyway, never hanging."""
    import workerpool_tui.core.workers as workers_module

    monkeypatch.setattr(workers_module, "ABANDON_AFTER_S", 0.2)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def stubborn(ctx: TaskContext, payload: dict[str, Any]) -> str:
        started.set()
        release.wait(DEADLINE_S)  # ignores ctx.cancel_requested
        finished.set()
        return "late"

    cfg = make_config(worker={"shutdown_timeout": "100ms"})
    engine = Engine(cfg, types=TypeRegistry([*builtin_types(), task_type("stubborn", stubborn)]))
    logs: list[str] = []
    with anyio.fail_after(DEADLINE_S):
        async with engine:
            sub = engine.bus.subscribe(maxsize=1000, name="logs")
            task = await engine.submit(TaskSpec(type="stubborn"))
            await anyio.to_thread.run_sync(started.wait, DEADLINE_S)
        logs = [e.message for e in sub.get_nowait() if isinstance(e, LogEvent)]
    try:
        assert not finished.is_set()  # the engine closed while the handler still ran
        assert task.status is TaskStatus.CANCELLED
        assert task.message == "cancelled: shutting down"
        assert any("ignored the shutdown" in line and task.id in line for line in logs), logs
    finally:
        release.set()
    await anyio.to_thread.run_sync(finished.wait, DEADLINE_S)
    assert finished.is_set()
