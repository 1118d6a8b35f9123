"""The worker pool: the scaling rule, auto-scaling, resize, pause/resume (SPEC §6, §11)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from enginekit import (
    make_config,
    make_engine,
    submit,
    wait_all_final,
    wait_final,
    wait_for,
    wait_until,
)

import workerpool_tui.core.workers as workers_module
from workerpool_tui.core import Engine, InvalidRequest, TaskSpec, TaskStatus
from workerpool_tui.core.bus import PoolEvent
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.core.pool import scaling_decision

pytestmark = pytest.mark.anyio


def decide(**kw: Any) -> tuple[int, str]:
    args: dict[str, Any] = {
        "current": 4,
        "busy_avg": 4.0,
        "busy_now": 4,
        "queued": 10,
        "min_workers": 1,
        "max_workers": 20,
        "up": 0.8,
        "down": 0.3,
    }
    args.update(kw)
    d = scaling_decision(**args)
    return d.delta, d.reason


# ------------------------------------------------------------------ the formula, pure
@pytest.mark.parametrize(
    ("kw", "delta"),
    [
        # grow: min(room, queued, max(1, ceil(current / 2)))
        ({}, 2),
        ({"current": 5, "busy_avg": 5.0, "busy_now": 5}, 3),
        ({"current": 1, "busy_avg": 1.0, "busy_now": 1}, 1),
        ({"queued": 1}, 1),  # never more workers than queued tasks
        ({"max_workers": 5}, 1),  # room left
        ({"max_workers": 4}, 0),  # at max
        ({"busy_avg": 3.2}, 2),  # utilisation exactly at the threshold grows
        ({"busy_avg": 3.1}, 0),  # just below: steady
        ({"queued": 0}, 0),  # busy but nothing waiting: no growth
        # shrink: target = max(min, ceil(busy_avg / up)); retire min(current - target, idle)
        ({"busy_avg": 0.0, "busy_now": 0, "queued": 0}, -3),
        ({"busy_avg": 0.0, "busy_now": 0, "queued": 0, "min_workers": 3}, -1),
        ({"busy_avg": 1.2, "busy_now": 1, "queued": 0}, -2),  # target ceil(1.5) = 2
        ({"busy_avg": 1.2, "busy_now": 3, "queued": 0}, -1),  # only idle workers retire
        ({"busy_avg": 1.2, "busy_now": 4, "queued": 0}, 0),
        ({"busy_avg": 0.0, "busy_now": 0, "queued": 0, "min_workers": 4}, 0),
        ({"current": 10, "busy_avg": 3.0, "busy_now": 2, "queued": 0}, -6),  # u = 0.3 exactly
        ({"current": 10, "busy_avg": 3.1, "busy_now": 2, "queued": 0}, 0),  # between: steady
        ({"current": 0, "busy_avg": 0.0, "busy_now": 0, "queued": 3}, 1),  # empty pool, work
    ],
)
def test_scaling_decision(kw: dict[str, Any], delta: int) -> None:
    assert decide(**kw)[0] == delta


def test_scaling_reasons_say_why() -> None:
    assert decide()[1] == "+2 workers: utilisation 1.00 ≥ 0.8, 10 queued"
    assert decide(busy_avg=0.0, busy_now=0, queued=0)[1] == (
        "-3 workers: utilisation 0.00 ≤ 0.3, 0 queued"
    )
    assert decide(max_workers=4)[1].startswith("at max_workers (4)")
    assert decide(busy_avg=2.0)[1].startswith("steady: utilisation 0.50")


# ------------------------------------------------------------------ the live pool
class Gate:
    def __init__(self) -> None:
        self.open = anyio.Event()

    async def __call__(self, ctx: TaskContext, payload: dict[str, Any]) -> None:
        await self.open.wait()


def _consistent(engine: Engine) -> None:
    s = engine.pool_state()
    assert s.busy + s.idle == s.current
    assert s.min <= s.max
    assert s.busy <= engine.config.task.max_concurrent_tasks


async def test_auto_scaling_grows_under_load_and_shrinks_back() -> None:
    gate = Gate()
    cfg = make_config(
        worker={
            "min_workers": 1,
            "max_workers": 4,
            "enable_auto_scaling": True,
            "scale_check_interval": "20ms",
        }
    )
    async with make_engine({"gate": gate}, cfg) as engine:
        assert engine.pool_state().current == 1
        sub = engine.bus.subscribe(name="pool-watch")
        tasks = await engine.submit_many([TaskSpec(type="gate")] * 8)
        await wait_until(engine, lambda: engine.pool_state().current == 4)
        _consistent(engine)
        await wait_until(engine, lambda: engine.pool_state().busy == 4)
        assert engine.stats().tasks.running == 4
        assert engine.stats().queue.depth == 4
        gate.open.set()
        await wait_all_final(engine, tasks)
        assert all(t.status is TaskStatus.COMPLETED for t in tasks)
        await wait_until(engine, lambda: engine.pool_state().current == 1)
        _consistent(engine)
        pool_events = [d for d in sub.get_nowait() if isinstance(d, PoolEvent)]
        sub.close()
    grew = [e for e in pool_events if e.reason.startswith("+")]
    shrank = [e for e in pool_events if e.reason.startswith("-")]
    assert grew and shrank
    assert max(e.current for e in pool_events) == 4
    assert all(e.action == "scale" for e in grew + shrank)
    history = engine.stats().scaling
    assert any(d.delta > 0 for d in history) and any(d.delta < 0 for d in history)
    assert sum(d.delta for d in history) == 0  # back where it started
    assert len({t.worker for t in tasks}) > 1


async def test_without_auto_scaling_the_pool_holds_min_workers() -> None:
    gate = Gate()
    cfg = make_config(worker={"min_workers": 2, "max_workers": 4, "scale_check_interval": "10ms"})
    async with make_engine({"gate": gate}, cfg) as engine:
        tasks = await engine.submit_many([TaskSpec(type="gate")] * 6)
        await wait_until(engine, lambda: engine.pool_state().busy == 2)
        assert engine.auto_scaling is False
        # Absence can only be observed over a window: some 20 scaler intervals.
        await anyio.sleep(0.2)
        assert engine.pool_state().current == 2
        assert list(engine.stats().scaling) == []
        gate.open.set()
        await wait_all_final(engine, tasks)
        assert engine.pool_state().current == 2
        assert {t.worker for t in tasks} <= {1, 2}


async def test_scale_once_applies_the_rule_to_the_live_pool() -> None:
    gate = Gate()
    cfg = make_config(worker={"min_workers": 2, "max_workers": 8})
    async with make_engine({"gate": gate}, cfg) as engine:
        tasks = await engine.submit_many([TaskSpec(type="gate")] * 5)
        await wait_until(engine, lambda: engine.pool_state().busy == 2)
        assert engine.scale_once() == 1  # min(room 6, queued 3, ceil(2/2) = 1)
        await wait_until(engine, lambda: engine.pool_state().busy == 3)
        assert engine.scale_once() == 2  # min(5, 2, ceil(3/2) = 2)
        await wait_until(engine, lambda: engine.pool_state().busy == 5)
        assert engine.pool_state().current == 5
        assert engine.scale_once() == 0  # busy but nothing queued
        gate.open.set()
        await wait_all_final(engine, tasks)
        # Shrinking retires parked idle workers: wait until all five have parked.
        await wait_for(lambda: len(engine.pool.idle) == 5, "the workers to park")
        assert engine.scale_once() == -3
        assert engine.pool_state().current == 2
        _consistent(engine)


async def test_max_concurrent_tasks_caps_the_pool() -> None:
    cfg = make_config(
        worker={"min_workers": 3, "max_workers": 50}, task={"max_concurrent_tasks": 3}
    )
    async with make_engine(config=cfg) as engine:
        state = engine.pool_state()
        assert (state.current, state.max) == (3, 3)
        with pytest.raises(InvalidRequest, match="max_concurrent_tasks"):
            engine.resize(max_workers=4)


async def test_resize_moves_the_pool_into_its_new_bounds() -> None:
    cfg = make_config(worker={"min_workers": 2, "max_workers": 4})
    async with make_engine(config=cfg) as engine:
        state = engine.resize(min_workers=4, max_workers=6)
        assert (state.current, state.min, state.max) == (4, 4, 6)
        _consistent(engine)
        state = engine.resize(min_workers=1, max_workers=2)
        assert (state.current, state.min, state.max) == (2, 1, 2)
        _consistent(engine)
        # The retired workers have really stopped; the remaining ones still work.
        await wait_for(lambda: len(engine.pool.live) == 2, "retired workers to stop")
        tasks = await engine.submit_many([TaskSpec(type="default_task")] * 10)
        await wait_all_final(engine, tasks)
        assert {t.worker for t in tasks} <= {w for w in engine.pool.workers}
        assert engine.stats().workers.current == 2


async def test_resize_below_busy_workers_retires_them_after_their_task() -> None:
    gate = Gate()
    cfg = make_config(worker={"min_workers": 3, "max_workers": 4})
    async with make_engine({"gate": gate}, cfg) as engine:
        tasks = await engine.submit_many([TaskSpec(type="gate")] * 3)
        await wait_until(engine, lambda: engine.pool_state().busy == 3)
        state = engine.resize(min_workers=1, max_workers=1)
        assert state.current == 1
        _consistent(engine)
        assert all(t.status is TaskStatus.RUNNING for t in tasks)  # nothing was cut short
        gate.open.set()
        await wait_all_final(engine, tasks)
        assert all(t.status is TaskStatus.COMPLETED for t in tasks)
        await wait_for(lambda: len(engine.pool.live) == 1, "retired workers to stop")
        assert engine.pool_state().current == 1


async def test_resize_right_after_start_retires_workers_not_yet_parked() -> None:
    cfg = make_config(worker={"min_workers": 4, "max_workers": 4})
    async with make_engine(config=cfg) as engine:
        # The four workers were spawned but have not run yet: none is parked idle.
        state = engine.resize(min_workers=1, max_workers=1)
        assert state.current == 1
        _consistent(engine)
        await wait_for(lambda: len(engine.pool.live) == 1, "retired workers to stop")
        tasks = await engine.submit_many([TaskSpec(type="default_task")] * 5)
        await wait_all_final(engine, tasks)
        assert len({t.worker for t in tasks}) == 1


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"min_workers": -1}, ">= 0"),
        ({"max_workers": 0}, ">= 1"),
        ({"min_workers": 5, "max_workers": 3}, "must not exceed max_workers"),
        ({"max_workers": 11}, "max_concurrent_tasks"),
    ],
)
async def test_bad_resize_is_refused_and_changes_nothing(kw: dict[str, int], words: str) -> None:
    async with make_engine() as engine:
        before = engine.pool_state()
        with pytest.raises(InvalidRequest, match=words):
            engine.resize(**kw)
        assert engine.pool_state() == before


async def test_pause_stops_dispatch_and_resume_restarts_it() -> None:
    async with make_engine() as engine:
        sub = engine.bus.subscribe(name="pool-watch")
        state = engine.pause()
        assert state.paused is True
        tasks = await engine.submit_many([TaskSpec(type="default_task")] * 5)
        # Yield to the loop a good many times: paused workers must take nothing.
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        assert all(t.status is TaskStatus.PENDING for t in tasks)
        assert engine.stats().queue.depth == 5
        assert engine.stats().workers.paused is True
        assert engine.pause() == engine.pool_state()  # pausing twice is harmless
        state = engine.resume()
        assert state.paused is False
        await wait_all_final(engine, tasks)
        assert all(t.status is TaskStatus.COMPLETED for t in tasks)
        actions = [d.action for d in sub.get_nowait() if isinstance(d, PoolEvent)]
        sub.close()
    assert actions == ["pause", "resume"]


async def test_pause_lets_running_tasks_finish() -> None:
    gate = Gate()
    async with make_engine({"gate": gate}) as engine:
        running = await submit(engine, "gate")
        await wait_until(engine, lambda: running.status is TaskStatus.RUNNING)
        engine.pause()
        queued = await submit(engine, "default_task")
        gate.open.set()
        await wait_all_final(engine, [running])
        assert running.status is TaskStatus.COMPLETED
        assert queued.status is TaskStatus.PENDING
        engine.resume()
        await wait_all_final(engine, [queued])


async def test_busy_plus_idle_is_current_throughout_a_run() -> None:
    gate = Gate()
    cfg = make_config(
        worker={
            "min_workers": 1,
            "max_workers": 6,
            "enable_auto_scaling": True,
            "scale_check_interval": "10ms",
        }
    )
    checks = 0

    async with make_engine({"gate": gate}, cfg) as engine:
        sub = engine.bus.subscribe(name="checker")
        tasks = await engine.submit_many(
            [TaskSpec(type="gate")] * 6 + [TaskSpec(type="default_task")] * 20
        )
        with anyio.fail_after(10):
            while engine.pool_state().current < 6:
                await sub.get_batch()
                _consistent(engine)
                checks += 1
        gate.open.set()
        with anyio.fail_after(10):
            while not all(t.status.final for t in tasks):
                await sub.get_batch()
                _consistent(engine)
                checks += 1
        sub.close()
    assert checks > 0


async def test_auto_scaling_from_zero_workers_and_back() -> None:
    cfg = make_config(
        worker={
            "min_workers": 0,
            "max_workers": 3,
            "enable_auto_scaling": True,
            "scale_check_interval": "20ms",
        }
    )
    async with make_engine(config=cfg) as engine:
        assert engine.pool_state().current == 0
        task = await submit(engine, "default_task")
        done = await wait_final(engine, task)  # the scaler started a worker for it
        assert done.status is TaskStatus.COMPLETED
        await wait_until(engine, lambda: engine.pool_state().current == 0)
        _consistent(engine)


async def test_a_worker_yields_between_tasks_only_when_a_next_one_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The time slice counted in loop turns, not time: with a zero slice a worker gives the
    # loop a turn between every two tasks, and none after its last one (its idle wait
    # does: a checkpoint first cost each task of a light load one loop turn more, #16).
    checkpoints: list[str | None] = []
    real = workers_module._backend_checkpoint  # the worker's checkpoint, found once

    async def counted() -> None:
        checkpoints.append(ran[-1] if ran else None)
        await real()()

    ran: list[str] = []

    async def record(ctx: TaskContext, payload: dict[str, Any]) -> None:
        ran.append(ctx.task_id)

    monkeypatch.setattr(workers_module, "SLICE_S", 0.0)
    monkeypatch.setattr(workers_module, "_backend_checkpoint", lambda: counted)
    cfg = make_config(worker={"min_workers": 1, "max_workers": 1})
    async with make_engine({"rec": record}, config=cfg) as engine:
        one = await engine.submit(TaskSpec(type="rec"))
        await wait_final(engine, one)
        assert checkpoints == []
        engine.pause()
        tasks = await engine.submit_many([TaskSpec(type="rec")] * 5)
        engine.resume()
        await wait_all_final(engine, tasks)
        assert ran[1:] == [t.id for t in tasks]
        assert checkpoints == [t.id for t in tasks[:-1]]  # after each task but the last
