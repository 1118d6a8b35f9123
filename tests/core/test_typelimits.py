"""Per-type settings (SPEC §12, issue #13): ``[task.types.NAME]`` parsing, the gates
(concurrency, rate limit, pause) and the per-type defaults."""

from __future__ import annotations

import itertools
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from enginekit import make_config, make_engine, submit, wait_all_final, wait_for, wait_until

import workerpool_tui.core.workers as workers_module
from workerpool_tui.config import ConfigError, load_config
from workerpool_tui.config_types import parse_rate
from workerpool_tui.core import InvalidRequest, TaskStatus
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.store.sqlite import SqliteJournal

pytestmark = pytest.mark.anyio


# ------------------------------------------------------------------ configuration
def test_rates_parse_to_seconds_between_starts() -> None:
    assert parse_rate("") == 0.0
    assert parse_rate("100/s") == pytest.approx(0.01)
    assert parse_rate("30/m") == pytest.approx(2.0)
    assert parse_rate("2/h") == pytest.approx(1800.0)
    assert parse_rate(" 0.5 / s ") == pytest.approx(2.0)
    for bad in ("100", "0/s", "10/d", "-1/s", "fast"):
        with pytest.raises(ValueError):
            parse_rate(bad)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"concurrency": -1}, "task.types.default_task.concurrency"),
        ({"concurrency": "4"}, "task.types.default_task.concurrency"),
        ({"rate_limit": "10/x"}, "task.types.default_task.rate_limit"),
        ({"timeout": "soon"}, "task.types.default_task.timeout"),
        ({"timeout": 0}, "task.types.default_task.timeout"),
        ({"timeout": "2d"}, "task.types.default_task.timeout"),
        ({"max_retries": 101}, "task.types.default_task.max_retries"),
        ({"priority": 2**31}, "task.types.default_task.priority"),
        ({"isolation": "fork"}, "task.types.default_task.isolation"),
        ({"bogus": 1}, "task.types.default_task.bogus"),
    ],
)
def test_a_bad_type_setting_is_one_line_naming_the_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={}, overrides={"task": {"types": {"default_task": table}}})
    message = str(err.value)
    assert key in message, message
    assert "\n" not in message


def test_a_type_setting_for_an_unknown_type_is_refused() -> None:
    cfg = make_config(task={"types": {"no_such_type": {"concurrency": 1}}})
    with pytest.raises(ConfigError, match=r"task\.types\.no_such_type: no such task type"):
        make_engine(config=cfg)


def test_durations_and_defaults_of_a_type_table() -> None:
    cfg = make_config(task={"types": {"default_task": {"timeout": "2m", "rate_limit": "5/s"}}})
    ts = cfg.task.types["default_task"]
    assert ts.timeout == 120.0
    assert (ts.isolation, ts.concurrency, ts.paused) == ("thread", 0, False)


# ------------------------------------------------------------------ defaults at admission
async def test_the_type_fills_in_timeout_retries_and_priority_a_submission_leaves_out() -> None:
    cfg = make_config(
        task={
            "types": {"default_task": {"timeout": "7s", "max_retries": 3, "priority": 9}},
        },
        worker={"min_workers": 1, "max_workers": 1},
    )
    async with make_engine(config=cfg) as engine:
        engine.pause()
        plain = await submit(engine, "default_task")
        told = await submit(engine, "default_task", timeout_s=2.0, max_retries=0, priority=-1)
        other = await submit(engine, "example_task")
        assert (plain.timeout_s, plain.max_retries, plain.priority) == (7.0, 3, 9)
        assert (told.timeout_s, told.max_retries, told.priority) == (2.0, 0, -1)
        assert (other.timeout_s, other.max_retries, other.priority) == (30.0, 0, 0)


# ------------------------------------------------------------------ the gates
def _gated_config(types: dict[str, Any], workers: int = 3) -> Any:
    return make_config(
        task={"types": types},
        worker={"min_workers": workers, "max_workers": workers},
    )


async def test_a_capped_slow_type_never_starves_the_others() -> None:
    """Five slow tasks capped at one at a time, queued before five quick ones, on three
    workers: the quick ones all finish while the slow ones wait their turn, and never
    more than one slow task runs."""
    release = anyio.Event()
    running = 0
    most = 0

    async def slow(ctx: TaskContext, payload: dict[str, Any]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await release.wait()
        finally:
            running -= 1

    async def quick(ctx: TaskContext, payload: dict[str, Any]) -> str:
        return "done"

    cfg = _gated_config({"slow": {"concurrency": 1}})
    async with make_engine({"slow": slow, "quick": quick}, config=cfg) as engine:
        slows = [await submit(engine, "slow", priority=5) for _ in range(5)]
        quicks = [await submit(engine, "quick") for _ in range(5)]
        await wait_all_final(engine, quicks)
        assert all(t.status is TaskStatus.COMPLETED for t in quicks)
        assert sorted(t.status.value for t in slows) == ["pending"] * 4 + ["running"]
        assert len(engine.queue) == 4  # held tasks still count as queued
        limit = engine.gates.limits["slow"]
        assert (limit.running, limit.held_count) == (1, 4)
        release.set()
        await wait_all_final(engine, slows)
        assert all(t.status is TaskStatus.COMPLETED for t in slows)
        assert most == 1
        assert (limit.running, limit.held_count, len(engine.queue)) == (0, 0, 0)


async def test_held_tasks_start_in_priority_order() -> None:
    started: list[int] = []
    gate = anyio.Event()

    async def one(ctx: TaskContext, payload: dict[str, Any]) -> None:
        started.append(payload["n"])
        if payload["n"] == 0:
            await gate.wait()

    cfg = _gated_config({"one": {"concurrency": 1}})
    async with make_engine({"one": one}, config=cfg) as engine:
        first = await submit(engine, "one", {"n": 0})
        await wait_until(engine, lambda: first.status is TaskStatus.RUNNING, "the first")
        rest = [await submit(engine, "one", {"n": n}, priority=n % 3) for n in range(1, 7)]
        await wait_for(lambda: engine.gates.limits["one"].held_count == 6, "held")
        gate.set()
        await wait_all_final(engine, rest)
        assert started == [0, 2, 5, 1, 4, 3, 6]


async def test_a_rate_limit_spaces_starts() -> None:
    starts: list[float] = []

    async def tick(ctx: TaskContext, payload: dict[str, Any]) -> None:
        starts.append(time.monotonic())

    cfg = _gated_config({"tick": {"rate_limit": "20/s"}})
    async with make_engine({"tick": tick}, config=cfg) as engine:
        tasks = [await submit(engine, "tick") for _ in range(6)]
        await wait_all_final(engine, tasks)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 5
    assert min(gaps) >= 0.045, gaps  # 50 ms apart (a few ms of clock rounding allowed)


async def test_pausing_a_type_holds_its_tasks_and_only_those() -> None:
    async def noop(ctx: TaskContext, payload: dict[str, Any]) -> None:
        return None

    cfg = _gated_config({"held": {"paused": True}})
    async with make_engine({"held": noop, "free": noop}, config=cfg) as engine:
        held = [await submit(engine, "held") for _ in range(3)]
        free = [await submit(engine, "free") for _ in range(3)]
        await wait_all_final(engine, free)
        await wait_for(lambda: engine.gates.limits["held"].held_count == 3, "held")
        assert [t.status for t in held] == [TaskStatus.PENDING] * 3
        engine.gates.update("held", paused=False)
        await wait_all_final(engine, held)
        assert [t.status for t in held] == [TaskStatus.COMPLETED] * 3


async def test_a_held_task_can_be_cancelled() -> None:
    async def noop(ctx: TaskContext, payload: dict[str, Any]) -> None:
        return None

    cfg = _gated_config({"held": {"paused": True}})
    async with make_engine({"held": noop}, config=cfg) as engine:
        tasks = [await submit(engine, "held") for _ in range(2)]
        await wait_for(lambda: engine.gates.limits["held"].held_count == 2, "held")
        await engine.cancel(tasks[0].id)
        assert tasks[0].status is TaskStatus.CANCELLED
        assert (engine.gates.limits["held"].held_count, len(engine.queue)) == (1, 1)
        engine.gates.update("held", paused=False)
        await wait_all_final(engine, tasks[1:])
        assert tasks[1].status is TaskStatus.COMPLETED
        assert len(engine.queue) == 0


async def test_a_cap_set_at_run_time_counts_what_already_runs() -> None:
    gate = anyio.Event()
    running = 0
    most_after = 0
    capped = False

    async def work(ctx: TaskContext, payload: dict[str, Any]) -> None:
        nonlocal running, most_after
        running += 1
        if capped:
            most_after = max(most_after, running)
        try:
            await gate.wait()
        finally:
            running -= 1

    cfg = _gated_config({}, workers=4)
    async with make_engine({"work": work}, config=cfg) as engine:
        first = [await submit(engine, "work") for _ in range(2)]
        await wait_until(engine, lambda: running == 2, "two running")
        capped = True
        limit = engine.gates.update("work", concurrency=2)
        assert limit.running == 2
        more = [await submit(engine, "work") for _ in range(3)]
        await wait_for(lambda: limit.held_count == 3, "three held")
        engine.gates.update("work", concurrency=3)
        await wait_for(lambda: running == 3, "a third running")
        gate.set()
        await wait_all_final(engine, first + more)
        assert most_after == 3


async def test_run_time_changes_are_checked_and_change_nothing_when_refused() -> None:
    async with make_engine(config=_gated_config({})) as engine:
        with pytest.raises(InvalidRequest, match="rate_limit"):
            engine.gates.update("default_task", concurrency=2, rate_limit="lots")
        with pytest.raises(InvalidRequest, match="concurrency"):
            engine.gates.update("default_task", concurrency=-1)
        assert "default_task" not in engine.gates.limits


async def test_with_the_sqlite_store_held_tasks_stay_pending_across_a_restart(
    tmp_path: Any,
) -> None:
    """Held tasks are ordinary pending tasks to the store: written as such, recovered as
    such, and held again by the gate of the next start."""

    async def noop(ctx: TaskContext, payload: dict[str, Any]) -> None:
        return None

    def config(paused: bool) -> Any:
        return make_config(
            task={"types": {"held": {"paused": paused}}},
            worker={"min_workers": 2, "max_workers": 2},
        )

    db = tmp_path / "tasks.db"
    engine = make_engine(
        {"held": noop, "free": noop}, config=config(True), journal=SqliteJournal(db)
    )
    async with engine:
        held = [await submit(engine, "held") for _ in range(3)]
        free = await submit(engine, "free")
        await wait_all_final(engine, [free])
        await wait_for(lambda: engine.gates.limits["held"].held_count == 3, "held")
    engine = make_engine(
        {"held": noop, "free": noop}, config=config(True), journal=SqliteJournal(db)
    )
    async with engine:
        again = [engine.get(t.id) for t in held]
        assert [t.status if t else None for t in again] == [TaskStatus.PENDING] * 3
        await wait_for(lambda: engine.gates.limits["held"].held_count == 3, "held again")
        engine.gates.update("held", paused=False)
        await wait_all_final(engine, [t for t in again if t is not None])
        assert all(t is not None and t.status is TaskStatus.COMPLETED for t in again)


async def test_a_worker_yields_between_held_tasks_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Held tasks (a type at its cap) are a next task as much as queued ones: with a zero
    # time slice, no worker may run two of them in one turn of the loop (#16: a worker
    # yields between two tasks only when the backlog has a next one).
    monkeypatch.setattr(workers_module, "SLICE_S", 0.0)
    gate = anyio.Event()
    turn = 0
    turns: list[tuple[int | None, int]] = []  # (worker, loop turn) of each task

    async def one(ctx: TaskContext, payload: dict[str, Any]) -> None:
        if payload["n"] == 0:
            await gate.wait()
        task = engine.get(ctx.task_id)
        assert task is not None
        turns.append((task.worker, turn))

    async def ticker() -> None:
        nonlocal turn
        while True:
            turn += 1
            await anyio.lowlevel.checkpoint()

    cfg = _gated_config({"one": {"concurrency": 1}}, workers=2)
    async with make_engine({"one": one}, config=cfg) as engine, anyio.create_task_group() as tg:
        first = await submit(engine, "one", {"n": 0})
        await wait_until(engine, lambda: first.status is TaskStatus.RUNNING, "the first")
        rest = [await submit(engine, "one", {"n": n}) for n in range(1, 6)]
        await wait_for(lambda: engine.gates.limits["one"].held_count == 5, "held")
        tg.start_soon(ticker)
        gate.set()
        await wait_all_final(engine, [first, *rest])
        tg.cancel_scope.cancel()
    assert len(turns) == 6
    assert len(set(turns)) == 6, turns
