"""Deterministic dashboards for snapshot tests: a fake clock, fixed ids, hand-set tasks.

The engine is built but not started, and its tasks are placed in the registry as they
would stand mid-run (pending, running with progress, completed, failed with a traceback,
cancelled). Nothing moves: no workers, a clock that never ticks, and the stats that vary
from run to run (uptime, loop lag, live worker counts) are frozen by ``stats_fn``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import msgspec

from workerpool_tui.config import Config, load_config
from workerpool_tui.core import Engine, Task, TaskError, TaskStatus
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.engine import EngineStats, PoolState
from workerpool_tui.core.stats import Latency, Percentiles, ScalingDecision
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.bridge import Bridge, ServerStatus

T0 = 1_790_000_000.0
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "workerpool_tui/core/builtin.py", line 67, in default_task\n'
    "    raise DemoFailure(...)\n"
    "workerpool_tui.core.builtin.DemoFailure: failed on request (payload.fail = true)\n"
)


def fixed_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{next(counter):04x}beef{0:08x}"


def make_config(**overrides: object) -> Config:
    base: dict[str, object] = {"store": {"path": ""}, "server": {"enabled": False}}
    base.update(overrides)
    return load_config(None, overrides=base)


def seeded_engine() -> tuple[Engine, FakeClock]:
    clock = FakeClock(T0)
    engine = Engine(make_config(), clock=clock, id_factory=fixed_ids())
    new_id = fixed_ids()
    tasks: list[Task] = []

    def add(**kw: object) -> Task:
        seq = len(tasks) + 1
        task = Task(id=new_id(), seq=seq, created_at=T0 - 60 + seq, **kw)  # type: ignore[arg-type]
        tasks.append(task)
        engine.registry.add(task)
        return task

    for n in range(3):
        t = add(type="example_task", payload={}, status=TaskStatus.COMPLETED, attempts=1)
        t.started_at, t.finished_at = t.created_at + 0.5, t.created_at + 1.5
        t.progress, t.message, t.worker = 100.0, "step 4/4", n + 1
        t.result = {"steps": 4}
        engine.stats_data.record_finish(T0 - 2 + n % 2)
    t = add(type="default_task", payload={"fail": True}, status=TaskStatus.FAILED, attempts=1)
    t.started_at, t.finished_at, t.worker = t.created_at + 0.1, t.created_at + 0.2, 2
    t.error = TaskError("DemoFailure", "failed on request (payload.fail = true)", TRACEBACK)
    t = add(type="long_running_task", payload={"duration": 60}, status=TaskStatus.CANCELLED)
    t.finished_at, t.message = t.created_at + 5, "cancelled by request"
    for pct, worker in ((40.0, 1), (75.0, 3)):
        t = add(
            type="long_running_task",
            payload={"duration": 30, "steps": 100},
            status=TaskStatus.RUNNING,
            attempts=1,
            priority=5,
        )
        t.started_at, t.worker, t.progress = T0 - 12, worker, pct
        t.message = f"step {pct:.0f}/100"
        t.add_log("starting 100 steps")
        t.add_log(f"reached step {pct:.0f}")
    pending = [
        add(type="default_task", payload={"n": n}, priority=n % 3, status=TaskStatus.PENDING)
        for n in range(3)
    ]
    engine.queue.push_many(pending, force=True)
    engine.stats_data.scaling.append(
        ScalingDecision(T0 - 30, 2, 4, "scaled up by 2: utilisation 1.00 >= 0.80, 6 queued")
    )
    engine.stats_data.scaling.append(
        ScalingDecision(T0 - 10, 0, 4, "resized: min 2, max 8 (4 workers)")
    )
    return engine, clock


def frozen_stats(engine: Engine) -> Callable[[], EngineStats]:
    """``engine.stats()`` with the run-to-run variable parts fixed."""
    zero = Percentiles(0.0, 0.0, 0.0)

    def stats() -> EngineStats:
        s = engine.stats()
        return msgspec.structs.replace(
            s,
            workers=PoolState(
                current=4, busy=2, idle=2, min=2, max=8, paused=False, auto_scaling=True
            ),
            latency=Latency(zero, zero, 0.0, 0.0),
            uptime_s=0.0,
        )

    return stats


def snapshot_app() -> DashboardApp:
    engine, _ = seeded_engine()
    bridge = Bridge(
        engine,
        stats_fn=frozen_stats(engine),
        server_status=lambda: ServerStatus(address="127.0.0.1:8080", ws_clients=1),
    )
    return DashboardApp(engine, bridge=bridge, freeze_timing=True)
