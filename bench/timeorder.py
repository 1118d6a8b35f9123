"""Delayed tasks and dependencies against baselines measured in the same run (issue 12).

1. ``IMMEDIATE`` no-op tasks on 8 workers, alone (the baseline), then again after
   ``DELAYED`` tasks due in an hour were submitted: the immediate throughput ratio
   (goal >= 0.8) and the memory per waiting task (RSS growth / count; payload ``{}``).
2. A chain of ``CHAIN`` tasks, each depending on the previous one, against as many
   independent tasks, on one worker (goal >= 0.5).

    .venv/bin/python bench/timeorder.py [--delayed 1000000] [--immediate 100000]
                                        [--chain 10000]

Machines here are shared and noisy: compare the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from typing import Any

import anyio
import anyio.lowlevel

from workerpool_tui.config import Config, TaskConfig, WorkerConfig
from workerpool_tui.core import Engine, TaskSpec
from workerpool_tui.core.handlers import TaskContext, build_registry, task_type


async def _noop(ctx: TaskContext, payload: dict[str, Any]) -> None:
    return None


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _engine(workers: int, tracked: int, capacity: int = 4096) -> Engine:
    cfg = Config(
        worker=WorkerConfig(min_workers=workers, max_workers=workers, enable_auto_scaling=False),
        task=TaskConfig(queue_capacity=capacity, max_tracked_tasks=tracked),
    )
    types = build_registry(handlers={}, allow_shell=False, entry_points_too=False)
    types.add(task_type("noop", _noop))
    return Engine(cfg, types=types)


async def _run_immediate(engine: Engine, n: int) -> float:
    """Submit ``n`` no-op tasks in batches as room allows; tasks/s until the last ends."""
    start = time.perf_counter()
    last = None
    left = n
    while left:
        room = min(left, 512, engine.queue.free)
        if room:
            last = (await engine.submit_many([TaskSpec(type="noop", payload={})] * room))[-1]
            left -= room
        else:
            await anyio.lowlevel.checkpoint()
    assert last is not None
    await engine.wait_finished(last.id)  # FIFO on one priority: the last one ends last
    return n / (time.perf_counter() - start)


async def immediate(n: int, delayed: int) -> tuple[float, float | None]:
    gc.collect()
    engine = _engine(8, delayed + n + 10_000)
    async with engine:
        per_task = None
        if delayed:
            before = _rss()
            due = engine.clock.now() + 3600
            for start in range(0, delayed, 10_000):
                size = min(10_000, delayed - start)
                await engine.submit_many([TaskSpec(type="noop", payload={}, run_at=due)] * size)
            gc.collect()
            per_task = (_rss() - before) / delayed
            assert engine.stats().tasks.scheduled == delayed
        rate = await _run_immediate(engine, n)
        await engine.shutdown(grace_s=0)
    return rate, per_task


async def chain(n: int, linked: bool) -> float:
    engine = _engine(1, 2 * n + 10_000, capacity=n + 10)
    async with engine:
        engine.pause()
        tasks: list[Any] = []
        for start in range(0, n, 1000):  # "$N" names a task of the same batch; between
            size = min(1000, n - start)  # batches the link is the previous one's last id
            first: tuple[str, ...] = (tasks[-1].id,) if linked and tasks else ()
            part = [TaskSpec(type="noop", payload={}, depends_on=first)]
            part += [
                TaskSpec(type="noop", payload={}, depends_on=(f"${j - 1}",) if linked else ())
                for j in range(1, size)
            ]
            tasks += await engine.submit_many(part)
        begin = time.perf_counter()
        engine.resume()
        await engine.wait_finished(tasks[-1].id)
        rate = n / (time.perf_counter() - begin)
        await engine.shutdown(grace_s=0)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delayed", type=int, default=1_000_000)
    parser.add_argument("--immediate", type=int, default=100_000)
    parser.add_argument("--chain", type=int, default=10_000)
    args = parser.parse_args()

    base, _ = anyio.run(immediate, args.immediate, 0)
    loaded, per_task = anyio.run(immediate, args.immediate, args.delayed)
    print(f"immediate tasks/s alone:                    {base:10,.0f}")
    print(f"immediate tasks/s with {args.delayed:,} delayed:   {loaded:10,.0f}")
    print(f"ratio (goal >= 0.8):                        {loaded / base:10.2f}")
    print(f"memory per waiting task:                    {per_task or 0:10,.0f} bytes")
    independent = anyio.run(chain, args.chain, False)
    linked = anyio.run(chain, args.chain, True)
    print(f"{args.chain:,} independent tasks/s, one worker:    {independent:10,.0f}")
    print(f"{args.chain:,} chained tasks/s, one worker:        {linked:10,.0f}")
    print(f"ratio (goal >= 0.5):                        {linked / independent:10.2f}")


if __name__ == "__main__":
    main()
