"""Engine throughput against two baselines measured in the same run (issue 2).

1. the limit: ``asyncio.Queue(1024)`` drained by 8 consumers awaiting a no-op coroutine;
2. the hand-written peer: an anyio memory object stream (buffer 1024), 8 consumers,
   ``anyio.fail_after`` around each job and a dict record per job moved
   pending -> running -> completed with timestamps;
3. the engine: no-op tasks submitted in batches as a producer would, run with full
   tracking, per-task timeouts and one bus subscriber draining every event.

Then the memory per tracked finished task (RSS growth / count, payload ``{}``).
Machines here are shared and noisy: compare the ratios, not the absolute rates.

    .venv/bin/python bench/pool.py [--tasks 200000] [--rounds 3] [--store]

With ``--store`` it then runs ``bench/store.py`` (issue 6): the engine with the SQLite
store against memory only, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from workerpool_tui.config import Config, TaskConfig, WorkerConfig
from workerpool_tui.core import Engine, EventKind, TaskSpec
from workerpool_tui.core.handlers import TaskContext, build_registry, task_type

WORKERS = 8
_FINAL = frozenset({EventKind.COMPLETED, EventKind.FAILED, EventKind.CANCELLED})


async def _noop() -> None:
    pass


async def limit(n: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue(1024)

    async def consumer() -> None:
        while True:
            await queue.get()
            await _noop()
            queue.task_done()

    consumers = [asyncio.create_task(consumer()) for _ in range(WORKERS)]
    start = time.perf_counter()
    for i in range(n):
        await queue.put(i)
    await queue.join()
    elapsed = time.perf_counter() - start
    for c in consumers:
        c.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return n / elapsed


async def peer(n: int) -> float:
    send, receive = anyio.create_memory_object_stream[dict[str, Any]](1024)
    records: dict[int, dict[str, Any]] = {}

    async def consumer(rx: anyio.abc.ObjectReceiveStream[dict[str, Any]]) -> None:
        async with rx:
            async for job in rx:
                job["status"] = "running"
                job["started_at"] = time.time()
                with anyio.fail_after(300):
                    await _noop()
                job["status"] = "completed"
                job["finished_at"] = time.time()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(WORKERS):
            tg.start_soon(consumer, receive.clone())
        receive.close()
        async with send:
            for i in range(n):
                job = {"id": i, "status": "pending", "created_at": time.time()}
                records[i] = job
                await send.send(job)
    elapsed = time.perf_counter() - start
    assert all(r["status"] == "completed" for r in records.values())
    return n / elapsed


async def _noop_handler(ctx: TaskContext, payload: dict[str, Any]) -> None:
    return None


def _engine(n: int) -> Engine:
    cfg = Config(
        worker=WorkerConfig(min_workers=WORKERS, max_workers=WORKERS, enable_auto_scaling=False),
        task=TaskConfig(queue_capacity=4096, max_tracked_tasks=n + 10_000),
    )
    types = build_registry(handlers={}, allow_shell=False, entry_points_too=False)
    types.add(task_type("noop", _noop_handler))
    return Engine(cfg, types=types)


async def _drive(engine: Engine, n: int, batch: int = 512, *, fresh: bool = False) -> None:
    """Submit ``n`` no-op tasks in batches while one subscriber drains every event.

    ``fresh``: a new ``{}`` payload per task, as decoding a request would give."""
    spec = TaskSpec(type="noop")
    done = anyio.Event()
    seen = 0

    async def drain() -> None:
        nonlocal seen
        async with engine.bus.subscribe(maxsize=1_000_000, name="bench") as sub:
            finished = 0
            while finished < n:
                for item in await sub.get_batch():
                    seen += 1
                    if getattr(item, "kind", None) in _FINAL:
                        finished += 1
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain)
        await anyio.lowlevel.checkpoint()
        left = n
        while left:
            room = min(left, batch, engine.queue.free)
            if room:
                specs = (
                    [TaskSpec(type="noop", payload={}) for _ in range(room)]
                    if fresh
                    else [spec] * room
                )
                await engine.submit_many(specs)
                left -= room
            await anyio.lowlevel.checkpoint()
        with anyio.fail_after(120):
            await done.wait()


async def engine_rate(n: int) -> float:
    async with _engine(n) as engine:
        start = time.perf_counter()
        await _drive(engine, n)
        elapsed = time.perf_counter() - start
        counts = engine.stats().tasks
        assert counts.completed == n, counts
    return n / elapsed


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


async def memory_per_task(n: int) -> float:
    """RSS growth per tracked finished task; run first thing in a fresh process, so memory
    freed by earlier runs cannot hide the growth."""
    async with _engine(n) as engine:
        await _drive(engine, 2_000, fresh=True)  # warm up allocators and caches
        gc.collect()
        before = _rss()
        await _drive(engine, n, fresh=True)
        gc.collect()
        after = _rss()
        assert len(engine.registry) == n + 2_000
    return (after - before) / n


def _memory_in_subprocess(n: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-only", "--memory-tasks", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tasks", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-tasks", type=int, default=100_000)
    ap.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--store",
        action="store_true",
        help="then run bench/store.py: the engine with the SQLite store vs memory only",
    )
    args = ap.parse_args()
    if args.memory_only:
        print(anyio.run(memory_per_task, args.memory_tasks))
        return
    n = args.tasks
    rates: dict[str, list[float]] = {"limit": [], "peer": [], "engine": []}
    for r in range(args.rounds):
        # Interleaved, so a noisy neighbour hits all three alike.
        rates["limit"].append(anyio.run(limit, n))
        rates["peer"].append(anyio.run(peer, n))
        rates["engine"].append(anyio.run(engine_rate, n))
        print(
            f"round {r + 1}: limit {rates['limit'][-1]:,.0f}/s  peer {rates['peer'][-1]:,.0f}/s"
            f"  engine {rates['engine'][-1]:,.0f}/s",
            flush=True,
        )
    med = {k: statistics.median(v) for k, v in rates.items()}
    per_task = _memory_in_subprocess(args.memory_tasks)
    print()
    print(f"tasks per run: {n:,}, workers: {WORKERS}, rounds: {args.rounds} (medians)")
    print(f"limit  (asyncio.Queue, no-op)            {med['limit']:>10,.0f} tasks/s")
    print(f"peer   (anyio stream + fail_after + dict) {med['peer']:>10,.0f} tasks/s")
    print(f"engine (tracking, timeouts, bus)          {med['engine']:>10,.0f} tasks/s")
    print(f"engine/peer  = {med['engine'] / med['peer']:.2f}   (goal >= 2.0)")
    print(f"engine/limit = {med['engine'] / med['limit']:.3f}  (goal >= 0.10)")
    print(f"memory per tracked finished task: {per_task:,.0f} bytes  (goal <= 600)")
    if args.store:
        print(flush=True)
        store_bench = Path(__file__).with_name("store.py")
        subprocess.run([sys.executable, str(store_bench)], check=True)


if __name__ == "__main__":
    main()
