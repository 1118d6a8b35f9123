"""Delayed tasks, dependencies and unique tasks on the engine (issue 12), on a fake clock:
no test waits for a delay in real time."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from enginekit import make_config, make_engine, wait_final, wait_until

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.errors import Blocked, Duplicate, InvalidRequest, QueueFull
from workerpool_tui.core.handlers import TaskContext

pytestmark = pytest.mark.anyio


def _spec(**kw: Any) -> TaskSpec:
    return TaskSpec(type="default_task", **kw)


async def test_delayed_task_waits_for_its_time_then_runs() -> None:
    clock = FakeClock()
    async with make_engine(clock=clock) as engine:
        (task,) = await engine.submit_many([_spec(run_at=clock.now() + 60)])
        assert task.status is TaskStatus.PENDING and task.run_at == clock.now() + 60
        counts = engine.stats().tasks
        assert (counts.pending, counts.scheduled, counts.blocked) == (0, 1, 0)
        (now_task,) = await engine.submit_many([_spec()])
        await wait_final(engine, now_task)
        assert task.status is TaskStatus.PENDING  # the clock has not moved
        listed, total = await engine.list_tasks(waiting="time")
        assert [t.id for t in listed] == [task.id] and total == 1
        clock.advance(59.9)
        await anyio.sleep(0.05)
        assert task.status is TaskStatus.PENDING
        clock.advance(0.2)
        done = await wait_final(engine, task)
        assert done.status is TaskStatus.COMPLETED and done.run_at is None
        assert engine.stats().tasks.scheduled == 0


async def test_past_run_at_means_now_and_delayed_tasks_take_no_queue_room() -> None:
    clock = FakeClock()
    config = make_config(task={"queue_capacity": 2, "max_tracked_tasks": 100})
    async with make_engine(clock=clock, config=config) as engine:
        engine.pause()
        later = [_spec(run_at=clock.now() + 3600) for _ in range(20)]
        await engine.submit_many(later)
        await engine.submit_many([_spec(run_at=clock.now() - 5), _spec()])
        with pytest.raises(QueueFull):
            await engine.submit_many([_spec()])
        counts = engine.stats().tasks
        assert (counts.pending, counts.scheduled) == (2, 20)


async def test_cancel_and_run_now_of_a_delayed_task() -> None:
    clock = FakeClock()
    async with make_engine(clock=clock) as engine:
        a, b = await engine.submit_many([_spec(run_at=clock.now() + 60)] * 2)
        cancelled = await engine.cancel(a.id)
        assert cancelled.status is TaskStatus.CANCELLED
        assert engine.stats().tasks.scheduled == 1
        await engine.run_now(b.id)
        assert (await wait_final(engine, b)).status is TaskStatus.COMPLETED
        clock.advance(120)  # the heap entries of both are skipped
        await anyio.sleep(0.01)
        assert engine.stats().tasks.scheduled == 0 and engine.stats().queue.depth == 0


async def test_chain_runs_in_order_and_children_read_parent_results() -> None:
    order: list[int] = []

    async def step(ctx: TaskContext, payload: dict[str, Any]) -> Any:
        order.append(payload["n"])
        return {"n": payload["n"], "parents": ctx.parent_results}

    async with make_engine({"step": step}) as engine:
        tasks = await engine.submit_many(
            [
                TaskSpec(type="step", payload={"n": 0}),
                TaskSpec(type="step", payload={"n": 1}, depends_on=("$0",)),
                TaskSpec(type="step", payload={"n": 2}, depends_on=("$1",)),
            ]
        )
        assert tasks[2].depends_on == (tasks[1].id,)
        last = await wait_final(engine, tasks[2])
        assert order == [0, 1, 2]
        assert last.result["parents"] == {tasks[1].id: tasks[1].result}


async def test_failed_parent_cancels_three_levels_at_once() -> None:
    async with make_engine() as engine:
        engine.pause()
        root, child, grandchild = await engine.submit_many(
            [
                _spec(payload={"fail": True}),
                _spec(depends_on=("$0",)),
                _spec(depends_on=("$1",)),
            ]
        )
        assert engine.stats().tasks.blocked == 2
        listed, _ = await engine.list_tasks(waiting="dependencies")
        assert {t.id for t in listed} == {child.id, grandchild.id}
        engine.resume()
        await wait_final(engine, root)
        # No sweep: by the time the parent is final, so are its dependents.
        assert child.status is TaskStatus.CANCELLED
        assert child.error is not None and child.error.type == "dependency_failed"
        assert root.id in child.error.message
        assert grandchild.status is TaskStatus.CANCELLED
        assert grandchild.error is not None and child.id in grandchild.error.message
        assert engine.stats().tasks.blocked == 0


async def test_cancelled_parent_cascades_and_long_chain_needs_no_recursion() -> None:
    async with make_engine(config=make_config(task={"max_tracked_tasks": 5000})) as engine:
        engine.pause()
        (root,) = await engine.submit_many([_spec()])
        prev = root
        for _ in range(1500):
            (prev,) = await engine.submit_many([_spec(depends_on=(prev.id,))])
        await engine.cancel(root.id)
        assert prev.status is TaskStatus.CANCELLED
        assert engine.stats().tasks.blocked == 0


async def test_depends_on_must_exist_and_refer_backwards() -> None:
    async with make_engine() as engine:
        with pytest.raises(InvalidRequest, match="no task with id"):
            await engine.submit_many([_spec(depends_on=("nope",))])
        with pytest.raises(InvalidRequest, match="earlier task"):
            await engine.submit_many([_spec(depends_on=("$1",)), _spec()])
        with pytest.raises(InvalidRequest, match="first task"):
            await engine.submit_many([_spec(depends_on=("$0",))])
        assert engine.stats().tasks.total == 0


async def test_child_of_a_completed_parent_runs_and_of_a_failed_one_is_cancelled() -> None:
    async with make_engine() as engine:
        ok, bad = await engine.submit_many([_spec(), _spec(payload={"fail": True})])
        await wait_final(engine, ok)
        await wait_final(engine, bad)
        a, b = await engine.submit_many([_spec(depends_on=(ok.id,)), _spec(depends_on=(bad.id,))])
        assert (await wait_final(engine, a)).status is TaskStatus.COMPLETED
        assert b.status is TaskStatus.CANCELLED and b.error is not None
        assert b.error.type == "dependency_failed"


async def test_unique_key_refuses_or_returns_the_existing_task() -> None:
    clock = FakeClock()
    async with make_engine(clock=clock) as engine:
        engine.pause()
        (first,) = await engine.submit_many([_spec(unique_key="k")])
        with pytest.raises(Duplicate) as info:
            await engine.submit_many([_spec(unique_key="k")])
        assert info.value.existing is first
        again = await engine.submit_many([_spec(unique_key="k", on_duplicate="return")])
        assert again == [first]
        # In one batch: the second use of a key answers with the first.
        x, y = await engine.submit_many([_spec(unique_key="b", on_duplicate="return")] * 2)
        assert x is y
        assert engine.stats().tasks.total == 2
        engine.resume()
        await wait_final(engine, first)
        (fresh,) = await engine.submit_many([_spec(unique_key="k")])
        assert fresh.id != first.id


async def test_unique_for_keeps_the_key_for_a_window() -> None:
    clock = FakeClock()
    async with make_engine(clock=clock) as engine:
        (first,) = await engine.submit_many([_spec(unique_key="w", unique_for=60.0)])
        await wait_final(engine, first)
        with pytest.raises(Duplicate):
            await engine.submit_many([_spec(unique_key="w")])
        clock.advance(61)
        (second,) = await engine.submit_many([_spec(unique_key="w")])
        assert second.id != first.id


async def test_concurrent_unique_submissions_make_one_task() -> None:
    async with make_engine() as engine:
        engine.pause()
        results: list[str] = []

        async def submit() -> None:
            (task,) = await engine.submit_many([_spec(unique_key="c", on_duplicate="return")])
            results.append(task.id)

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(submit)
        assert len(set(results)) == 1 and engine.stats().tasks.total == 1


async def test_run_now_of_a_blocked_task_is_refused() -> None:
    async with make_engine() as engine:
        engine.pause()
        _, child = await engine.submit_many([_spec(), _spec(depends_on=("$0",))])
        with pytest.raises(Blocked):
            await engine.run_now(child.id)
        await wait_until(engine, lambda: True)
