"""The bridge on its own: folding, bounds under a flood of events, queries."""

from __future__ import annotations

import logging
import threading

import anyio
import pytest

from workerpool_tui.core import Engine, Task, TaskSpec, TaskStatus
from workerpool_tui.core.bus import LogEvent, TaskEvent
from workerpool_tui.core.models import EventKind
from workerpool_tui.logging import RecordBuffer
from workerpool_tui.tui.app import WINDOW_ROWS, DashboardApp
from workerpool_tui.tui.bridge import LOG_BACKLOG, Bridge, Query, SortSpec
from workerpool_tui.tui.widgets.task_table import TaskTable

from .factory import make_config, seeded_engine
from .harness import SIZE, until


def _task(n: int, status: TaskStatus = TaskStatus.PENDING) -> Task:
    return Task(id=f"{n:016x}", type="default_task", payload={}, seq=n, status=status)


def test_fold_collects_ids_and_membership() -> None:
    engine = Engine(make_config())
    bridge = Bridge(engine)
    tasks = [_task(n) for n in range(1, 101)]
    for t in tasks:
        engine.bus.publish(TaskEvent(EventKind.CREATED, t))
        engine.bus.publish(TaskEvent(EventKind.PROGRESS, t))
    ch = bridge.take()
    assert ch.task_ids == {t.id for t in tasks}
    assert ch.membership and not ch.rebuild
    assert ch.events == 200
    for t in tasks[:10]:
        engine.bus.publish(TaskEvent(EventKind.PROGRESS, t))
    ch = bridge.take()
    assert ch.task_ids == {t.id for t in tasks[:10]}
    assert not ch.membership  # progress alone changes cells, not which rows are shown
    assert bridge.take().task_ids == set()


def test_soak_buffers_stay_bounded_under_a_flood() -> None:
    engine = Engine(make_config())
    bridge = Bridge(engine, bus_buffer=5_000, max_changed=2_000)
    tasks = [_task(n) for n in range(1, 50_001)]
    published = 0
    rebuilds = 0
    for burst in range(30):
        # 10,000 events between two ticks: more than the bus buffer holds.
        for i in range(10_000):
            t = tasks[(burst * 10_000 + i) % len(tasks)]
            engine.bus.publish(TaskEvent(EventKind.STARTED, t))
            published += 1
            if i % 6_000 == 0:
                bridge.pump()  # 6,000 events between pumps overflow the 5,000 buffer
                assert bridge.pending_ids <= bridge.max_changed
            assert len(bridge.sub) <= 5_000
        for _ in range(2_000):
            engine.bus.publish(LogEvent("info", "line", 0.0))
        assert bridge.pending_logs <= LOG_BACKLOG
        ch = bridge.take()
        assert len(ch.task_ids) <= bridge.max_changed
        assert len(ch.logs) <= LOG_BACKLOG
        rebuilds += ch.rebuild
    assert published == 300_000
    assert rebuilds == 30  # every overflowing burst became one rebuild, not 10,000 redraws
    assert bridge.resyncs > 0 and engine.bus.dropped > 0


def test_record_buffer_lines_reach_the_bridge_from_any_thread() -> None:
    engine = Engine(make_config())
    records = RecordBuffer()
    records.setLevel(logging.DEBUG)
    logger = logging.getLogger("workerpool_tui.test-bridge")
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    try:
        bridge = Bridge(engine, records=records)
        worker = threading.Thread(
            target=lambda: [logger.info("from a thread %d", i) for i in range(2_000)]
        )
        worker.start()
        worker.join(10)
        ch = bridge.take()
        assert 0 < len(ch.logs) <= LOG_BACKLOG
        assert ch.logs[-1][1].endswith("from a thread 1999")
        bridge.close()
        assert records.listener is None
    finally:
        logger.removeHandler(records)


def test_query_filters_searches_and_sorts_a_window() -> None:
    engine, _ = seeded_engine()
    bridge = Bridge(engine)
    rows, total = bridge.query(Query(limit=4))
    assert total == 10 and [t.seq for t in rows] == [10, 9, 8, 7]
    rows, total = bridge.query(Query(statuses=frozenset({TaskStatus.RUNNING})))
    assert total == 2 and {t.status for t in rows} == {TaskStatus.RUNNING}
    rows, total = bridge.query(Query(search="0004BEEF".lower()))
    assert [t.id for t in rows] == ["0004beef00000000"] and total == 1
    rows, _ = bridge.query(Query(search="long_running"))
    assert {t.type for t in rows} == {"long_running_task"}
    rows, total = bridge.query(Query(sort=SortSpec("priority", True), limit=3))
    assert [t.priority for t in rows] == [5, 5, 2] and total == 10
    rows, _ = bridge.query(Query(sort=SortSpec("progress", False), limit=10))
    assert [t.progress for t in rows] == sorted(t.progress for t in rows)


@pytest.mark.anyio
async def test_soak_dashboard_under_a_running_engine() -> None:
    """Thousands of quick tasks with the dashboard attached: bounded buffers, steady ticks."""
    cfg = make_config(
        worker={"min_workers": 8, "max_workers": 8, "enable_auto_scaling": False},
        task={"queue_capacity": 20_000, "max_tracked_tasks": 50_000},
    )
    async with Engine(cfg) as engine:
        bridge = Bridge(engine, bus_buffer=4_000, max_changed=1_000)
        app = DashboardApp(engine, bridge=bridge)
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one(TaskTable)
            ticks_before = len(app.tick_times)
            total = 10_000
            for _ in range(total // 2_000):
                await engine.submit_many([TaskSpec(type="default_task")] * 2_000)
                assert len(bridge.sub) <= 4_000
                assert bridge.pending_ids <= 1_000
                await pilot.pause()
            with anyio.fail_after(60):
                while engine.stats_data.finished_total < total:
                    assert len(bridge.sub) <= 4_000
                    assert bridge.pending_ids <= 1_000
                    assert table.row_count <= WINDOW_ROWS
                    await pilot.pause(0.05)
            # Every task has finished; the table shows the newest once a tick applied the
            # last events (wait for that, not for a row count reached a tick earlier).
            newest = next(iter(engine.registry.newest())).id
            await until(pilot, lambda: table.row_count == WINDOW_ROWS)
            await until(pilot, lambda: table.shown_ids[:1] == [newest])
            assert len(app.tick_times) > ticks_before  # ticks drew it (no key was pressed)


def test_running_filter_is_newest_first_and_limited() -> None:
    engine = Engine(make_config())
    bridge = Bridge(engine)
    for n in range(1, 301):
        status = TaskStatus.RUNNING if n % 3 == 0 else TaskStatus.PENDING
        engine.registry.add(_task(n, status))
    q = Query(statuses=frozenset({TaskStatus.RUNNING}), limit=50)
    rows, total = bridge.query(q)
    assert total == 100
    assert [t.seq for t in rows] == list(range(300, 150, -3))
    rows, _ = bridge.query(Query(statuses=frozenset({TaskStatus.RUNNING}), limit=500))
    assert [t.seq for t in rows] == list(range(300, 0, -3))
