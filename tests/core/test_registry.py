"""The task registry: listing, counts, cleanup by age, eviction (SPEC §6, §11)."""

from __future__ import annotations

from typing import Any

import pytest
from enginekit import make_config, make_engine, submit, wait_all_final, wait_final

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.core.models import Task
from workerpool_tui.core.registry import Registry

pytestmark = pytest.mark.anyio

P, R, C, F, X = (
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.COMPLETED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
)


def _populate(reg: Registry, plan: list[tuple[str, TaskStatus]], *, t0: float = 0.0) -> list[Task]:
    """Add tasks in submission order, then move them to their status in that same order."""
    tasks = []
    for seq, (type_, status) in enumerate(plan, start=1):
        task = Task(id=f"t{seq:03d}", type=type_, payload={}, seq=seq)
        reg.add(task)
        tasks.append(task)
        if status is not P:
            reg.moved(task, task.transition(R))
        if status.final:
            task.finished_at = t0 + seq
            reg.moved(task, task.transition(status))
    return tasks


def _check_counts(reg: Registry) -> None:
    tasks = [reg.get(t.id) for t in reg.newest()]
    for status in TaskStatus:
        assert reg.counts[status] == sum(1 for t in tasks if t and t.status is status)
    assert sum(reg.counts.values()) == len(reg)


# ------------------------------------------------------------------ listing
def test_listing_filters_pages_newest_first_with_totals() -> None:
    reg = Registry(1000)
    plan = [("a", C), ("b", F), ("a", P), ("a", R), ("b", C), ("a", X), ("b", P), ("a", C)]
    tasks = _populate(reg, plan)
    ids = [t.id for t in tasks]
    _check_counts(reg)

    page, total = reg.page()
    assert total == 8
    assert [t.id for t in page] == ids[::-1]
    page, total = reg.page(limit=3, offset=2)
    assert (total, [t.id for t in page]) == (8, ids[::-1][2:5])
    page, total = reg.page(statuses=frozenset({C}))
    assert (total, [t.id for t in page]) == (3, ["t008", "t005", "t001"])
    page, total = reg.page(statuses=frozenset({P, R}))
    assert (total, [t.id for t in page]) == (3, ["t007", "t004", "t003"])
    page, total = reg.page(statuses=frozenset({P}), limit=1)
    assert (total, [t.id for t in page]) == (2, ["t007"])
    page, total = reg.page(type_="b")
    assert (total, [t.id for t in page]) == (3, ["t007", "t005", "t002"])
    page, total = reg.page(type_="a", statuses=frozenset({C, X}), limit=2)
    assert (total, [t.id for t in page]) == (3, ["t008", "t006"])
    page, total = reg.page(offset=100)
    assert (page, total) == ([], 8)
    page, total = reg.page(type_="zzz")
    assert (page, total) == ([], 0)
    page, total = reg.page(limit=0)
    assert (page, total) == ([], 8)


async def test_engine_list_tasks_and_counts() -> None:
    async def fail(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("no")

    async with make_engine({"fail": fail}) as engine:
        done = await engine.submit_many([TaskSpec(type="default_task")] * 3)
        bad = await engine.submit_many([TaskSpec(type="fail")] * 2)
        await wait_all_final(engine, done + bad)
        engine.pause()
        waiting = await engine.submit_many([TaskSpec(type="default_task")] * 2)
        await engine.cancel(waiting[0].id)

        page, total = await engine.list_tasks()
        assert total == 7
        assert [t.id for t in page] == [t.id for t in (done + bad + waiting)][::-1]
        page, total = await engine.list_tasks(status=[TaskStatus.FAILED])
        assert (total, {t.id for t in page}) == (2, {t.id for t in bad})
        page, total = await engine.list_tasks(type_="default_task", limit=2, offset=1)
        assert total == 5
        assert [t.id for t in page] == [waiting[0].id, done[2].id]
        counts = engine.stats().tasks
        assert (counts.total, counts.pending, counts.running) == (7, 1, 0)
        assert (counts.completed, counts.failed, counts.cancelled) == (3, 2, 1)


# ------------------------------------------------------------------ cleanup
async def test_cleanup_by_age_keeps_failed_longer_and_never_touches_active() -> None:
    async def fail(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("no")

    clock = FakeClock()
    cfg = make_config(task={"cleanup_completed_tasks_after": "1h", "keep_failed_for": "24h"})
    async with make_engine({"fail": fail}, cfg, clock=clock) as engine:
        done = await submit(engine, "default_task")
        failed = await submit(engine, "fail")
        await wait_all_final(engine, [done, failed])
        engine.pause()
        cancelled = await submit(engine, "default_task")
        await engine.cancel(cancelled.id)
        pending = await submit(engine, "default_task")
        assert engine.run_cleanup() == 0

        clock.advance(3599)
        assert engine.run_cleanup() == 0
        clock.advance(2)  # past one hour: successes and cancellations go, failures stay
        assert engine.run_cleanup() == 2
        assert engine.get(done.id) is None
        assert engine.get(cancelled.id) is None
        assert engine.get(failed.id) is failed
        assert engine.get(pending.id) is pending
        counts = engine.stats().tasks
        assert (counts.total, counts.completed, counts.cancelled, counts.failed) == (2, 0, 0, 1)

        clock.advance(23 * 3600)
        assert engine.run_cleanup() == 1
        assert engine.get(failed.id) is None
        clock.advance(10 * 86400)
        assert engine.run_cleanup() == 0
        assert engine.get(pending.id) is pending  # active tasks are never cleaned up
        assert engine.stats().tasks.total == 1


def test_registry_cleanup_drops_oldest_finished_first() -> None:
    reg = Registry(1000)
    tasks = _populate(reg, [("a", C), ("a", F), ("a", C), ("a", X), ("a", R)], t0=100.0)
    # finished_at = 101, 102, 103, 104 for the final ones
    dropped = reg.cleanup(now=103.5 + 10, keep_done_s=10, keep_failed_s=1000)
    assert [t.id for t in dropped] == [tasks[0].id, tasks[2].id]
    assert len(reg) == 3
    _check_counts(reg)


# ------------------------------------------------------------------ eviction
async def test_eviction_past_max_tracked_drops_the_oldest_final_tasks() -> None:
    cfg = make_config(
        worker={"min_workers": 1, "max_workers": 1},
        task={"queue_capacity": 5, "max_concurrent_tasks": 2, "max_tracked_tasks": 10},
    )
    async with make_engine(config=cfg) as engine:
        first = await engine.submit_many([TaskSpec(type="default_task")] * 5)
        await wait_all_final(engine, first)
        second = await engine.submit_many([TaskSpec(type="default_task")] * 5)
        await wait_all_final(engine, second)
        assert len(engine.registry) == 10
        engine.pause()
        third = await engine.submit_many([TaskSpec(type="default_task")] * 3)
        assert len(engine.registry) == 10
        assert engine.registry.evicted == 3
        assert [engine.get(t.id) for t in first[:3]] == [None, None, None]
        assert all(engine.get(t.id) is t for t in first[3:] + second + third)
        assert engine.stats().tasks.total == 10
        assert engine.stats().tasks.completed == 7
        # A full queue of pending tasks never evicts active ones.
        more = await engine.submit_many([TaskSpec(type="default_task")] * 2)
        assert all(engine.get(t.id) is t for t in third + more)
        assert engine.registry.evicted == 5


def test_eviction_takes_successes_before_failures_and_never_active() -> None:
    reg = Registry(4)
    tasks = _populate(reg, [("a", F), ("a", C), ("a", P), ("a", X), ("a", F), ("a", R)])
    dropped = reg.evict_overflow()
    # Two over: completed/cancelled ones first, oldest first; failures are kept longer.
    assert [t.id for t in dropped] == [tasks[1].id, tasks[3].id]
    assert len(reg) == 4
    assert reg.evicted == 2
    _check_counts(reg)
    reg.max_tracked = 2
    dropped = reg.evict_overflow()
    assert [t.id for t in dropped] == [tasks[0].id, tasks[4].id]
    assert {t.id for t in reg.newest()} == {tasks[2].id, tasks[5].id}
    reg.max_tracked = 1
    assert reg.evict_overflow() == []  # only active tasks left: nothing to evict
    _check_counts(reg)


class _WalkCounter(dict[str, Task]):
    """A finish-order index that counts the walks started from its front."""

    walks = 0

    def __iter__(self) -> Any:
        self.walks += 1
        return super().__iter__()

    def values(self) -> Any:
        self.walks += 1
        return super().values()


def test_eviction_and_cleanup_walk_the_index_once_whatever_they_drop() -> None:
    # Issue #10: popping the oldest one at a time restarted a walk from the dict's front
    # per task, over every slot popped since its last resize: quadratic, 36 ms a batch of
    # 1,000 at 100,000 tracked. One walk per index per call, however many are dropped.
    reg = Registry(40)
    _populate(reg, [("a", C)] * 1000 + [("a", F)] * 50)
    counted = reg._finished = _WalkCounter(reg._finished)
    failed = reg._failed = _WalkCounter(reg._failed)
    dropped = reg.evict_overflow()
    assert len(dropped) == 1010 and len(reg) == 40
    assert all(t.status is F for t in reg.newest())  # successes before failures
    assert counted.walks == 1 and failed.walks == 1
    _check_counts(reg)
    reg = Registry(10_000)
    _populate(reg, [("a", C)] * 1000 + [("a", F)] * 10, t0=0.0)  # finished_at = seq
    counted = reg._finished = _WalkCounter(reg._finished)
    failed = reg._failed = _WalkCounter(reg._failed)
    dropped = reg.cleanup(now=900.5 + 10, keep_done_s=10, keep_failed_s=10_000)
    assert [t.seq for t in dropped] == list(range(1, 901))
    assert counted.walks == 1 and failed.walks == 1
    assert len(reg) == 110
    _check_counts(reg)


async def test_registry_lookups_by_id() -> None:
    async with make_engine() as engine:
        task = await submit(engine, "default_task", {"q": 1})
        assert engine.get(task.id) is task
        assert task.id in engine.registry
        assert engine.get("missing") is None
        await wait_final(engine, task)
        assert engine.get(task.id) is task


def test_recovered_history_is_cleaned_up_in_finish_order() -> None:
    # Recovered final tasks arrive by seq; the oldest-finished must still go first.
    reg = Registry(max_tracked=10)
    late = Task(id="a", type="x", payload={}, status=C, seq=1, created_at=0.0, finished_at=500.0)
    early = Task(id="b", type="x", payload={}, status=C, seq=2, created_at=1.0, finished_at=10.0)
    reg.add(late)
    reg.add(early)
    reg.order_finished()
    assert [t.id for t in reg.cleanup(now=200.0, keep_done_s=100.0, keep_failed_s=100.0)] == ["b"]
    assert reg.get("a") is late
