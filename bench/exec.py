"""Process isolation against thread mode and ``concurrent.futures.ProcessPoolExecutor``,
in one run (issue #13).

1. Throughput of a CPU-bound task (a pure-Python loop of about 10 ms, ``exec_work.spin``):
   the engine with ``isolation = "process"`` (``--processes`` worker processes), the
   engine with the same function as a plain (thread) handler, and a
   ``ProcessPoolExecutor`` with as many processes driving the same function. Rounds
   interleave the three; the medians and their ratios are printed.
2. Cancel latency of a CPU-bound process task that ignores cancellation (``deaf``):
   time from ``cancel`` to the task being final, over ``--cancels`` cancels, with
   ``worker.kill_grace`` = ``--grace``; p50, p99, max against grace + 200 ms.
3. Overhead per no-op process task (submitted in a batch, wall time / count) against the
   same no-op as a thread handler, and the idle RSS of the worker processes.

    .venv/bin/python bench/exec.py [--tasks 200] [--rounds 3] [--cancels 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import exec_work

from workerpool_tui.config import load_config
from workerpool_tui.core import Engine, TaskSpec, TaskStatus
from workerpool_tui.core.builtin import builtin_types
from workerpool_tui.core.handlers import TypeRegistry, task_type
from workerpool_tui.core.procpool.protocol import rss_bytes


def calibrate(target_s: float = 0.010) -> int:
    """Iterations for ``target_s`` of CPU (CPU time: wall time on a loaded machine counts
    the waits for a core too)."""
    n = 20_000
    while True:
        start = time.process_time()
        exec_work.spin(n)
        took = time.process_time() - start
        if took > 0.02:
            return max(1000, int(n * target_s / took))
        n *= 2


def _engine(processes: int, *, grace: float = 2.0, workers: int = 8) -> Engine:
    cfg = load_config(
        None,
        environ={},
        overrides={
            "store": {"path": ""},
            "server": {"enabled": False},
            "logger": {"level": "warning"},
            "worker": {
                "min_workers": workers,
                "max_workers": workers,
                "enable_auto_scaling": False,
                "processes": processes,
                "kill_grace": grace,
            },
            "task": {"queue_capacity": 100_000, "max_tracked_tasks": 200_000},
        },
    )
    types = TypeRegistry(
        [
            *builtin_types(),
            task_type("burn_p", exec_work.burn, isolation="process"),
            task_type("burn_t", exec_work.burn),
            task_type("noop_p", exec_work.noop, isolation="process"),
            task_type("noop_t", exec_work.noop),
            task_type("deaf_p", exec_work.deaf, isolation="process"),
        ]
    )
    return Engine(cfg, types=types)


async def _ready(engine: Engine) -> None:
    """Every worker process has started (one no-op through each)."""
    specs = [TaskSpec(type="noop_p") for _ in range(2 * (engine.procs.size if engine.procs else 1))]
    for task in await engine.submit_many(specs):
        await engine.wait_finished(task.id)


async def _run_batch(engine: Engine, type_: str, count: int, payload: dict[str, Any]) -> float:
    start = time.perf_counter()
    tasks = await engine.submit_many([TaskSpec(type=type_, payload=payload) for _ in range(count)])
    for task in tasks:
        await engine.wait_finished(task.id)
    took = time.perf_counter() - start
    bad = [t for t in tasks if t.status is not TaskStatus.COMPLETED]
    assert not bad, bad[0].error
    return took


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Run:
    """One measured batch: tasks/s, and CPU per task of the driving process and of its
    children (what load on a shared machine moves least)."""

    def __init__(self, count: int, wall: float, parent_cpu: float, child_cpu: float) -> None:
        self.rate = count / wall
        self.parent_ms = 1000 * parent_cpu / count
        self.child_ms = 1000 * child_cpu / count

    def idle_rate(self, cores: int, children: int) -> float:
        """Tasks/s the CPU per task allows on ``cores`` idle cores: the children share
        the cores (at most one each), the driving process needs its share too."""
        if self.child_ms == 0:  # thread mode: one process, at most one core (the GIL)
            return 1000 / self.parent_ms
        child_cores = min(children, cores)
        return 1000 / max(
            self.child_ms / child_cores, self.parent_ms, (self.child_ms + self.parent_ms) / cores
        )


async def engine_rate(type_: str, processes: int, count: int, n: int) -> Run:
    async with _engine(processes) as engine:
        await _ready(engine)
        pids = engine.procs.pids() if engine.procs and type_.endswith("_p") else []
        cpu0, kids0 = time.process_time(), _cpu_of(pids)
        wall = await _run_batch(engine, type_, count, {"n": n})
        return Run(count, wall, time.process_time() - cpu0, _cpu_of(pids) - kids0)


def executor_rate(processes: int, count: int, n: int) -> Run:
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(exec_work.spin, [1000] * processes * 2))  # started and warm
        pids = list(pool._processes)  # a benchmark may read the private map
        cpu0, kids0 = time.process_time(), _cpu_of(pids)
        start = time.perf_counter()
        futures = [pool.submit(exec_work.spin, n) for _ in range(count)]
        for f in futures:
            f.result()
        wall = time.perf_counter() - start
        return Run(count, wall, time.process_time() - cpu0, _cpu_of(pids) - kids0)


async def cancel_latencies(processes: int, cancels: int, grace: float) -> list[float]:
    out: list[float] = []
    async with _engine(processes, grace=grace) as engine:
        await _ready(engine)
        for _ in range(cancels):
            task = await engine.submit(TaskSpec(type="deaf_p"))
            with anyio.fail_after(30):
                while task.progress < 1:  # noqa: ASYNC110 - a benchmark's plain poll
                    await anyio.sleep(0.002)
            start = time.perf_counter()
            await engine.cancel(task.id)
            out.append(time.perf_counter() - start)
            assert task.status is TaskStatus.CANCELLED
    return out


async def overhead(processes: int, count: int) -> tuple[float, float, int]:
    async with _engine(processes) as engine:
        await _ready(engine)
        assert engine.procs is not None
        idle_rss = sum(rss_bytes(pid) for pid in engine.procs.pids())
        per_p = await _run_batch(engine, "noop_p", count, {}) / count
        per_t = await _run_batch(engine, "noop_t", count, {}) / count
        return per_p, per_t, idle_rss


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--cancels", type=int, default=50)
    parser.add_argument("--grace", type=float, default=0.25)
    parser.add_argument("--noops", type=int, default=2000)
    args = parser.parse_args()
    procs = args.processes
    n = calibrate()
    print(f"cpu: {os.cpu_count()} cores, {procs} worker processes; task: spin({n}) ≈ 10 ms of CPU")
    runs: dict[str, list[Run]] = {"process": [], "thread": [], "executor": []}
    for r in range(args.rounds):
        runs["process"].append(anyio.run(engine_rate, "burn_p", procs, args.tasks, n))
        runs["thread"].append(anyio.run(engine_rate, "burn_t", procs, args.tasks, n))
        runs["executor"].append(executor_rate(procs, args.tasks, n))
        print(
            f"  round {r + 1}: "
            + "  ".join(
                f"{k} {v[-1].rate:6.1f}/s (CPU/task {v[-1].parent_ms:.2f} ms here"
                f" + {v[-1].child_ms:.2f} ms in children)"
                for k, v in runs.items()
            )
        )
    med = {k: statistics.median(x.rate for x in v) for k, v in runs.items()}
    cores = os.cpu_count() or 2
    idle = {k: statistics.median(x.idle_rate(cores, procs) for x in v) for k, v in runs.items()}
    print(
        f"throughput (median of {args.rounds}): process {med['process']:.1f}/s,"
        f" thread {med['thread']:.1f}/s, ProcessPoolExecutor {med['executor']:.1f}/s"
    )
    print(f"  process / thread              = {med['process'] / med['thread']:.2f}x (goal ≥ 1.8x)")
    print(
        f"  process / ProcessPoolExecutor = {med['process'] / med['executor']:.2f}x (goal ≥ 0.9x)"
    )
    print(
        f"what the CPU per task allows on {cores} idle cores: process {idle['process']:.0f}/s,"
        f" thread {idle['thread']:.0f}/s, ProcessPoolExecutor {idle['executor']:.0f}/s"
        f" (process / thread {idle['process'] / idle['thread']:.2f}x, process /"
        f" ProcessPoolExecutor {idle['process'] / idle['executor']:.2f}x)"
    )
    lat = anyio.run(cancel_latencies, procs, args.cancels, args.grace)
    bound = args.grace + 0.2
    print(
        f"cancel latency of a task that ignores it ({len(lat)} cancels, kill_grace"
        f" {args.grace:g}s): p50 {_pct(lat, 0.5) * 1000:.0f} ms, p99"
        f" {_pct(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
        f" (goal p99 ≤ grace + 200 ms = {bound * 1000:.0f} ms)"
    )
    per_p, per_t, idle = anyio.run(overhead, procs, args.noops)
    print(
        f"no-op task: process {per_p * 1e6:.0f} µs/task, thread {per_t * 1e6:.0f} µs/task"
        f" (overhead of the process path {max(0.0, per_p - per_t) * 1e6:.0f} µs);"
        f" idle RSS of {procs} worker processes {idle / 2**20:.1f} MiB"
        f" ({idle / procs / 2**20:.1f} MiB each)"
    )


if __name__ == "__main__":
    main()
