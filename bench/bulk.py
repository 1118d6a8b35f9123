"""Loop lag while a bulk action works through 100,000 tasks (``core/bulk.py``).

    .venv/bin/python bench/bulk.py [--tasks 100000] [--pg postgresql://...]

One engine (memory store, the pool paused so that every task stays pending): ``--tasks``
tasks are submitted, then cancelled, retried and deleted in bulk, each by a filter that
matches them all. ``--pg URL``: the engine is a cluster instance on that PostgreSQL, in a
fresh schema dropped after the run (no baseline: it holds none of the tasks). Beside each
action a probe sleeps 5 ms again and again and records how late it wakes
(:data:`PROBE_S`): the worst is the loop lag the action caused. As a baseline, the same
probe beside one unchunked pass over the same tasks (what a bulk action without chunks
would block for). Prints each action's time, its max loop lag, and the ratio.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from workerpool_tui import __version__  # noqa: E402
from workerpool_tui.config import Config, StoreConfig, TaskConfig, WorkerConfig  # noqa: E402
from workerpool_tui.core import Engine  # noqa: E402
from workerpool_tui.core.bulk import SLICE_S, BulkFilter, run_bulk  # noqa: E402
from workerpool_tui.core.models import TaskSpec, TaskStatus  # noqa: E402

PROBE_S = 0.005
"""The probe's sleep. Lag is reported two ways: wall (how late the probe woke: includes
the time the machine gave to other processes) and CPU (the loop thread's CPU time while the
probe waited: the work the loop did before it could wake the probe, which is what the
lag would be on an idle machine). On a loaded machine only the CPU figure is meaningful."""


async def _probe(lags: list[tuple[float, float]], stop: anyio.Event) -> None:
    while not stop.is_set():
        start, cpu = time.perf_counter(), time.thread_time()
        await anyio.sleep(PROBE_S)
        lags.append((time.perf_counter() - start - PROBE_S, time.thread_time() - cpu))


async def _with_probe(label: str, job: object) -> float:
    lags: list[tuple[float, float]] = []
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_probe, lags, stop)
        await anyio.sleep(0.05)
        start = time.perf_counter()
        result = await job()  # type: ignore[operator]
        took = time.perf_counter() - start
        stop.set()
    wall = max(w for w, _ in lags) * 1000
    worst = max(c for _, c in lags) * 1000
    print(
        f"  {label:<34} {took * 1000:7.0f} ms  max lag: {worst:5.1f} ms CPU,"
        f" {wall:6.1f} ms wall   {result}"
    )
    return worst


async def main(n: int, pg: str) -> None:
    schema = f"bench_bulk_{secrets.token_hex(4)}"
    cfg = Config(
        worker=WorkerConfig(min_workers=1, max_workers=1, enable_auto_scaling=False),
        task=TaskConfig(queue_capacity=2 * n + 10, max_tracked_tasks=3 * n + 20),
        store=StoreConfig(url=pg, schema=schema),
    )
    store = None
    if pg:
        from workerpool_tui.store.postgres.store import PostgresStore

        store = PostgresStore(cfg, version=__version__)
    try:
        await _run(Engine(cfg, store=store), n, pg)
    finally:
        if pg:
            import psycopg

            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def _run(engine: Engine, n: int, pg: str) -> None:
    async with engine:
        engine.pause()
        spec = TaskSpec(type="default_task")
        for _ in range(0, n, 1000):
            await engine.submit_many([spec] * 1000)
        where = "a cluster instance (PostgreSQL)" if pg else "memory store"
        print(f"{n:,} pending tasks, {where}, slices of {SLICE_S * 1000:g} ms")

        async def one_pass() -> str:
            every = list(engine.registry.newest())
            hit = sum(1 for t in every if t.status is TaskStatus.PENDING)
            return f"{hit:,} matched"

        base = 0.0 if pg else await _with_probe("baseline: one unchunked match pass", one_pass)
        lags = []
        for action, flt in (
            ("cancel", BulkFilter(status=[TaskStatus.PENDING])),
            ("retry", BulkFilter(status=[TaskStatus.CANCELLED])),
            ("delete", BulkFilter(status=[TaskStatus.CANCELLED])),
        ):

            async def job(action: str = action, flt: BulkFilter = flt) -> str:
                r = await run_bulk(engine, action, flt)  # type: ignore[arg-type]
                return f"matched {r.matched:,} changed {r.changed:,} skipped {r.skipped}"

            lags.append(await _with_probe(f"bulk {action}", job))
        line = f"worst bulk lag {max(lags):.1f} ms CPU (goal < 50 ms)"
        if base:
            line += f"; one unchunked pass: {base:.1f} ms CPU, ratio {max(lags) / base:.2f}"
        print(line)
        await engine.shutdown(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--pg", default="", help="a PostgreSQL URL: the cluster store")
    args = parser.parse_args()
    anyio.run(main, args.tasks, args.pg)
