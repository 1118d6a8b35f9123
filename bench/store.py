"""Benchmark: the engine with the SQLite store against memory only, in the same run.

    .venv/bin/python bench/store.py [--tasks 100000] [--latency-submits 5000]

Prints, for memory only and for the store: throughput (``default_task``s submitted in
batches of ``--batch`` by ``--submitters`` concurrent callers and run to completion),
single-``submit`` latency p50/p99 under ``--concurrency`` concurrent callers (with the
store a submit returns once committed), and the database size per 100,000 finished
tasks. Ratios are against memory only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from workerpool_tui.config import Config, StoreConfig, TaskConfig, WorkerConfig
from workerpool_tui.core import Engine, Task, TaskSpec, TaskStatus
from workerpool_tui.core.journal import Journal, MemoryJournal
from workerpool_tui.store.sqlite import SqliteJournal


def _config(tasks: int, workers: int) -> Config:
    return Config(
        worker=WorkerConfig(min_workers=workers, max_workers=workers, enable_auto_scaling=False),
        task=TaskConfig(
            queue_capacity=tasks,
            max_concurrent_tasks=workers,
            max_tracked_tasks=tasks + workers + 1,
        ),
        store=StoreConfig(path=""),
    )


async def _throughput(
    journal: Journal, tasks: int, batch: int, workers: int, submitters: int
) -> tuple[float, float, float, float]:
    """Tasks per second, from the first submission to the last completion; CPU seconds
    per task of the engine's process, of its event loop's thread alone, and of the
    store's writer process (its whole life, so start-up and the final commit too; 0 for
    memory only)."""
    async with Engine(_config(tasks, workers), journal=journal) as engine:
        done = engine.registry.counts
        starts = list(range(0, tasks, batch))

        async def submitter(mine: list[int]) -> None:
            for first in mine:
                specs = [
                    TaskSpec(type="default_task", payload={"i": i, "note": "bench"})
                    for i in range(first, min(tasks, first + batch))
                ]
                submitted.extend(await engine.submit_many(specs))

        submitted: list[Task] = []
        start, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
        async with anyio.create_task_group() as tg:  # like several clients at once
            for k in range(submitters):
                tg.start_soon(submitter, starts[k::submitters])
        with anyio.fail_after(600):
            for task in submitted:
                await engine.wait_finished(task.id)  # at once if already finished
        assert done[TaskStatus.COMPLETED] == tasks
        elapsed = time.perf_counter() - start
        cpu, loop = time.process_time() - cpu, time.thread_time() - loop
    writer = journal.writer_cpu_s if isinstance(journal, SqliteJournal) else 0.0
    return tasks / elapsed, cpu / tasks, loop / tasks, writer / tasks


async def _latency(journal: Journal, submits: int, concurrency: int) -> list[float]:
    """Seconds per ``engine.submit`` (acknowledged = committed) under concurrent callers."""
    latencies: list[float] = []
    async with Engine(_config(submits, 8), journal=journal) as engine:

        async def caller(n: int) -> None:
            for i in range(n):
                t0 = time.perf_counter()
                await engine.submit(TaskSpec(type="default_task", payload={"i": i}))
                latencies.append(time.perf_counter() - t0)

        with anyio.fail_after(600):
            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(caller, submits // concurrency)
    return latencies


async def _reopen(db: Path) -> tuple[float, float, int]:
    """Seconds (wall, and CPU of the process) to open the store again: lock, header and
    quick_check, load every task."""
    journal = SqliteJournal(db)
    start, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        tasks = await journal.open(tg)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await journal.close()
    return elapsed, cpu, len(tasks)


def _ratios_text(ratios: list[float]) -> str:
    return ", ".join(f"{r:.2f}" for r in ratios)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="wp-bench-store-") as tmp:
        db = Path(tmp) / "tasks.db"
        print(
            f"{args.repeat} x {args.tasks} default_task tasks, {args.submitters} submitters"
            f" of batches of {args.batch}, {args.workers} workers;"
            f" latency: {args.latency_submits} submits, {args.concurrency} concurrent callers;"
            f" store sync={args.sync}"
        )
        # Memory and store alternate, so a noisy neighbour hits both alike; medians.
        mem_runs: list[tuple[float, float, float, float]] = []
        store_runs: list[tuple[float, float, float, float]] = []
        for rep in range(args.repeat):
            mem_runs.append(
                await _throughput(
                    MemoryJournal(), args.tasks, args.batch, args.workers, args.submitters
                )
            )
            if rep:
                db.unlink()
            store = SqliteJournal(db, sync=args.sync)
            store_runs.append(
                await _throughput(store, args.tasks, args.batch, args.workers, args.submitters)
            )
        mem_tps = statistics.median(r[0] for r in mem_runs)
        store_tps = statistics.median(r[0] for r in store_runs)
        mem_cpu = statistics.median(r[1] for r in mem_runs)
        store_cpu = statistics.median(r[1] for r in store_runs)
        mem_loop = statistics.median(r[2] for r in mem_runs)
        store_loop = statistics.median(r[2] for r in store_runs)
        store_writer = statistics.median(r[3] for r in store_runs)
        ratios = sorted(s[0] / m[0] for m, s in zip(mem_runs, store_runs, strict=True))
        size = db.stat().st_size
        reopen_s, reopen_cpu, recovered = await _reopen(db)
        per_commit = store.rows_written / max(1, store.commits)
        mem_lat = await _latency(MemoryJournal(), args.latency_submits, args.concurrency)
        lat_db = Path(tmp) / "latency.db"
        store_lat = await _latency(
            SqliteJournal(lat_db, sync=args.sync), args.latency_submits, args.concurrency
        )

    print(f"{'(median of runs)':24}{'memory':>12}{'store':>12}{'ratio':>8}")
    print(
        f"{'throughput (tasks/s)':24}{mem_tps:12,.0f}{store_tps:12,.0f}{store_tps / mem_tps:8.2f}"
    )
    print(
        f"{'engine process CPU/task (us)':24}{mem_cpu * 1e6:12.1f}{store_cpu * 1e6:12.1f}"
        f"{store_cpu / mem_cpu:8.2f}"
    )
    print(
        f"{'loop-thread CPU/task (us)':24}{mem_loop * 1e6:12.1f}{store_loop * 1e6:12.1f}"
        f"{store_loop / mem_loop:8.2f}"
    )
    print(f"{'writer process CPU/task (us)':24}{'':12}{store_writer * 1e6:12.1f}")
    for q in (50, 99):
        m, s = _pct(mem_lat, q) * 1e3, _pct(store_lat, q) * 1e3
        print(f"{f'submit p{q} (ms)':24}{m:12.3f}{s:12.3f}{s / m:8.1f}")
    print(f"throughput ratio per run (memory then store, alternating): {_ratios_text(ratios)}")
    print(
        f"store (last run): {store.commits:,} commits, {store.rows_written:,} rows written"
        f" ({per_commit:.0f} per commit)"
    )
    print(
        f"re-opening the store (checks + loading {recovered:,} tasks): {reopen_s:.2f} s"
        f" ({reopen_cpu:.2f} s CPU)"
    )
    print(
        f"database size: {size / 1e6:.1f} MB for {args.tasks:,} finished tasks"
        f" = {size * 100_000 / args.tasks / 1e6:.1f} MB per 100,000"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs of each")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--latency-submits", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sync", choices=["normal", "full", "off"], default="normal")
    anyio.run(main, parser.parse_args())
