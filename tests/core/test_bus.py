"""The event bus (SPEC §7): bounded buffers, coalesced progress, resync for slow readers."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from enginekit import drain, make_config, make_engine, task_events, wait_all_final

from workerpool_tui.core import EventKind, TaskSpec, TaskStatus
from workerpool_tui.core.bus import RESYNC, EventBus, LogEvent, PoolEvent, TaskEvent
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.core.models import Task

pytestmark = pytest.mark.anyio


def _task(task_id: str = "t1") -> Task:
    return Task(id=task_id, type="x", payload={})


def test_publish_reaches_every_subscriber_in_order() -> None:
    bus = EventBus()
    a, b = bus.subscribe(name="a"), bus.subscribe(name="b")
    t = _task()
    events = [
        TaskEvent(EventKind.CREATED, t),
        LogEvent("info", "hi", 0.0),
        TaskEvent(EventKind.STARTED, t),
    ]
    for e in events:
        bus.publish(e)
    assert a.get_nowait() == events
    assert b.get_nowait() == events
    assert a.get_nowait() == []
    assert (a.delivered, bus.published, bus.dropped) == (3, 3, 0)


def test_progress_is_coalesced_per_task_until_read() -> None:
    bus = EventBus()
    sub = bus.subscribe(name="s")
    t1, t2 = _task("t1"), _task("t2")
    for _ in range(5):
        bus.publish(TaskEvent(EventKind.PROGRESS, t1))
    bus.publish(TaskEvent(EventKind.PROGRESS, t2))
    bus.publish(TaskEvent(EventKind.COMPLETED, t1))
    got = sub.get_nowait()
    assert [(e.kind, e.task.id) for e in task_events(got)] == [
        (EventKind.PROGRESS, "t1"),
        (EventKind.PROGRESS, "t2"),
        (EventKind.COMPLETED, "t1"),
    ]
    assert sub.dropped == 4
    # Once read, the next progress of the same task is delivered again.
    bus.publish(TaskEvent(EventKind.PROGRESS, t2))
    assert [e.kind for e in task_events(sub.get_nowait())] == [EventKind.PROGRESS]


def test_overflow_drops_the_buffer_and_delivers_resync_once() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3, name="slow")
    fast = bus.subscribe(maxsize=100, name="fast")
    t = _task()
    for _ in range(10):
        bus.publish(TaskEvent(EventKind.CREATED, t))
    assert slow.get_nowait() == [RESYNC]
    assert slow.dropped == 10
    assert slow.resyncs == 1
    assert len(fast.get_nowait()) == 10
    # After the resync the subscriber reads normally again.
    bus.publish(TaskEvent(EventKind.STARTED, t))
    assert [e.kind for e in task_events(slow.get_nowait())] == [EventKind.STARTED]
    assert bus.stats() == {"published": 11, "dropped": 10, "subscribers": 2, "resyncs": 1}
    slow.close()
    # Counted after the subscriber left, too.
    assert bus.stats() == {"published": 11, "dropped": 10, "subscribers": 1, "resyncs": 1}


def test_subscribe_needs_a_positive_buffer() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        EventBus().subscribe(maxsize=0)


async def test_get_batch_waits_and_closing_ends_iteration() -> None:
    bus = EventBus()
    sub = bus.subscribe(name="s")
    batches: list[list[Any]] = []

    async def reader() -> None:
        async for batch in sub:
            batches.append(batch)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.lowlevel.checkpoint()
            bus.publish(LogEvent("info", "one", 0.0))
            await anyio.wait_all_tasks_blocked()
            bus.close()  # the reader's loop ends; the task group exits
    assert [[e.message for e in b] for b in batches] == [["one"]]  # type: ignore[union-attr]
    assert sub.closed
    with pytest.raises(anyio.EndOfStream):
        await sub.get_batch()


# ------------------------------------------------------------------ through the engine
async def test_a_subscriber_that_never_reads_does_not_hold_up_the_pool() -> None:
    n = 300
    cfg = make_config(task={"queue_capacity": 500, "max_tracked_tasks": 2000})
    async with make_engine(config=cfg) as engine:
        stuck = engine.bus.subscribe(maxsize=8, name="never-reads")
        reader = engine.bus.subscribe(maxsize=100_000, name="keeps-up")
        tasks = await engine.submit_many(
            [TaskSpec(type="default_task", payload={"i": i}) for i in range(n)]
        )
        await wait_all_final(engine, tasks)
        assert all(t.status is TaskStatus.COMPLETED for t in tasks)
        assert engine.stats().tasks.completed == n
        stats = engine.stats().bus
        assert stats.dropped >= stuck.dropped > 0
        assert stuck.get_nowait() == [RESYNC]
        assert engine.stats().bus.resyncs >= 1
        # A reader with room saw every transition of every task: none silently dropped.
        kinds = [e.kind for e in task_events(drain(reader))]
        for kind in (EventKind.CREATED, EventKind.STARTED, EventKind.COMPLETED):
            assert kinds.count(kind) == n
        assert reader.dropped == 0
        # After a resync the engine's snapshot is the way back in.
        snapshot = await engine.snapshot()
        assert len(snapshot) == min(n, 500)
        assert [t.seq for t in snapshot] == sorted((t.seq for t in snapshot), reverse=True)
        stuck.close()
        reader.close()


async def test_engine_progress_is_coalesced_latest_wins() -> None:
    release = anyio.Event()

    async def chatty(ctx: TaskContext, payload: dict[str, Any]) -> None:
        for pct in range(1, 51):
            ctx.progress(pct, f"at {pct}")
        await release.wait()

    async with make_engine({"chatty": chatty}) as engine:
        sub = engine.bus.subscribe(name="observer")
        task = (await engine.submit_many([TaskSpec(type="chatty")]))[0]
        got: list[TaskEvent] = []
        with anyio.fail_after(10):
            while not any(e.kind is EventKind.PROGRESS for e in got):
                got += task_events(await sub.get_batch())
        got += task_events(sub.get_nowait())
        progress = [e for e in got if e.kind is EventKind.PROGRESS]
        assert len(progress) == 1
        assert progress[0].task.progress == 50.0
        assert progress[0].task.message == "at 50"
        assert sub.dropped == 49
        release.set()
        await wait_all_final(engine, [task])


async def test_snapshot_holds_every_active_task_and_recent_final_ones() -> None:
    async with make_engine() as engine:
        done = await engine.submit_many([TaskSpec(type="default_task")] * 5)
        await wait_all_final(engine, done)
        engine.pause()
        waiting = await engine.submit_many([TaskSpec(type="default_task")] * 4)
        snap = await engine.snapshot(limit=6)
        assert [t.id for t in snap] == [t.id for t in waiting[::-1]] + [done[4].id, done[3].id]
        snap = await engine.snapshot(limit=3)
        assert [t.id for t in snap] == [t.id for t in waiting[::-1][:3]]


async def test_pool_changes_are_published() -> None:
    async with make_engine() as engine:
        sub = engine.bus.subscribe(name="observer")
        engine.resize(min_workers=3, max_workers=5)
        pool = [d for d in sub.get_nowait() if isinstance(d, PoolEvent)]
        assert len(pool) == 1
        assert (pool[0].action, pool[0].current, pool[0].min_workers, pool[0].max_workers) == (
            "resize",
            3,
            3,
            5,
        )
        sub.close()


async def test_soak_a_bounded_reader_keeps_up_or_resyncs_and_every_event_is_accounted() -> None:
    n = 2000
    maxsize = 256
    cfg = make_config(
        worker={"min_workers": 4, "max_workers": 4},
        task={"queue_capacity": n, "max_tracked_tasks": 3 * n},
    )
    async with make_engine(config=cfg) as engine:
        sub = engine.bus.subscribe(maxsize=maxsize, name="bounded-reader")
        published_at_start = engine.bus.published
        finished: set[str] = set()
        resyncs = 0
        largest = 0

        async def read() -> None:
            nonlocal resyncs, largest
            while len(finished) < n:
                largest = max(largest, len(sub))
                batch = await sub.get_batch()
                assert len(batch) <= maxsize
                for item in batch:
                    if item is RESYNC:
                        resyncs += 1
                        # The way back in: the engine's own view of what is final.
                        finished.update(t.id for t in engine.registry.newest() if t.status.final)
                    elif isinstance(item, TaskEvent) and item.kind is EventKind.COMPLETED:
                        finished.add(item.task.id)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                for _ in range(n // 100):
                    await engine.submit_many([TaskSpec(type="default_task")] * 100)
                    await anyio.lowlevel.checkpoint()
        assert engine.stats().tasks.completed == n
        assert largest <= maxsize
        # Nothing vanished unaccounted: delivered + dropped + still buffered = published.
        published = engine.bus.published - published_at_start
        assert sub.delivered + sub.dropped + len(sub) == published
        assert sub.resyncs == resyncs
        sub.close()
