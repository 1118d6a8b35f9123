"""Stats (issue 2): counts, queue, workers, throughput over the last minute, percentiles."""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec
import pytest
from enginekit import make_config, make_engine, submit, wait_all_final

from workerpool_tui.core import NotFound, TaskSpec, TaskStatus
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.core.stats import WINDOW_S, Stats, percentiles

pytestmark = pytest.mark.anyio


def test_percentiles_of_the_recent_samples() -> None:
    ring: deque[float] = deque(maxlen=100)
    assert msgspec.structs.astuple(percentiles(ring)) == (0.0, 0.0, 0.0)
    for v in range(1, 101):
        ring.append(float(v))
    assert msgspec.structs.astuple(percentiles(ring)) == (50.0, 95.0, 99.0)
    for _ in range(100):  # the ring keeps only the newest samples
        ring.append(1000.0)
    assert msgspec.structs.astuple(percentiles(ring)) == (1000.0, 1000.0, 1000.0)


def test_throughput_counts_whole_seconds_of_the_last_minute() -> None:
    stats = Stats()
    t0 = 1_790_000_000.0
    for _ in range(30):
        stats.record_finish(t0 + 0.5)
    for _ in range(6):
        stats.record_finish(t0 + 1.2)
    now = stats.throughput(t0 + 1.9)  # second t0 + 1 is still filling up
    assert now.completed_last_s == 30.0
    assert now.history[-2:] == [30, 6]
    assert len(now.history) == WINDOW_S
    later = stats.throughput(t0 + 2.0)
    assert later.completed_last_s == 6.0
    assert later.completed_per_s == round(36 / (WINDOW_S - 1), 2)
    gone = stats.throughput(t0 + 3600)
    assert sum(gone.history) == 0
    assert stats.finished_total == 36


def test_throughput_survives_interleaved_reads_and_a_clock_going_back() -> None:
    """Finishes are counted per open second and reach their bucket when the second
    changes or somebody reads: neither a read mid-second nor a step back loses any."""
    stats = Stats()
    t0 = 1_790_000_000.0
    stats.record_finish(t0 + 0.1)
    assert stats.throughput(t0 + 0.2).history[-1] == 1  # read while the second is open
    stats.record_finish(t0 + 0.3)
    stats.record_finish(t0 + 1.1)
    stats.record_finish(t0 + 0.9)  # the clock stepped back into the previous second
    stats.record_finish(t0 + 1.5)
    assert stats.finished_total == 5
    assert stats.throughput(t0 + 1.6).history[-2:] == [3, 2]
    assert stats.finished_total == 5


async def test_engine_stats_is_the_wire_stats_object() -> None:
    clock = FakeClock()

    async def fail(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("no")

    cfg = make_config(worker={"min_workers": 2, "max_workers": 3})
    async with make_engine({"fail": fail}, cfg, clock=clock) as engine:
        tasks = await engine.submit_many(
            [TaskSpec(type="default_task")] * 4 + [TaskSpec(type="fail")]
        )
        await wait_all_final(engine, tasks)
        engine.pause()
        await submit(engine, "default_task")
        clock.advance(1.0)
        wire = msgspec.json.decode(msgspec.json.encode(engine.stats()))
    assert wire["tasks"] == {
        "total": 6,
        "pending": 1,
        "running": 0,
        "completed": 4,
        "failed": 1,
        "cancelled": 0,
        "scheduled": 0,
        "blocked": 0,
    }
    assert wire["queue"] == {"depth": 1, "capacity": 100}
    workers = wire["workers"]
    assert {k: workers[k] for k in ("current", "busy", "idle", "min", "max", "paused")} == {
        "current": 2,
        "busy": 0,
        "idle": 2,
        "min": 2,
        "max": 3,
        "paused": True,
    }
    assert wire["throughput"]["completed_last_s"] == 5.0
    assert set(wire["latency"]["queue_wait_s"]) == {"p50", "p95", "p99"}
    assert wire["latency"]["queue_wait_s"]["p99"] == 0.0  # the fake clock never moved then
    assert wire["uptime_s"] >= 0
    assert wire["bus"]["subscribers"] == 0
    assert [d["reason"] for d in wire["scaling"]] == ["dispatch paused"]


async def test_retry_makes_a_new_task_with_the_same_options() -> None:
    async with make_engine() as engine:
        first = await submit(
            engine, "default_task", {"fail": True}, priority=3, timeout_s=9.0, max_retries=0
        )
        await wait_all_final(engine, [first])
        assert first.status is TaskStatus.FAILED
        again = await engine.retry(first.id)
        assert again.id != first.id
        assert again.retry_of == first.id
        assert (again.type, again.payload, again.priority, again.timeout_s, again.max_retries) == (
            first.type,
            first.payload,
            3,
            9.0,
            0,
        )
        await wait_all_final(engine, [again])
        with pytest.raises(NotFound):
            await engine.retry("missing")
