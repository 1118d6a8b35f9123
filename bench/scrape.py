"""What scraping ``GET /metrics`` once a second costs the engine (run by ``bench/http.py
--only metrics``, or alone: ``.venv/bin/python bench/scrape.py [--duration 5] [--rounds 3]
[--types 5]``).

One process holds an engine (8 workers, no-op tasks fed in batches, memory store) and its
API server on loopback. Each round runs the engine for ``--duration`` seconds twice, in
alternating order: without a scraper (the baseline) and with a scraper in another process
asking ``GET /metrics`` once a second over keep-alive. Prints the tasks per second of both
and their ratio (the goal: at least 0.99), and the server's time per scrape measured
in-process (the collector plus ``prometheus_client``'s text writer), wall and CPU time, the
CPU time as a share of a second: a figure far less sensitive to a busy machine than the
throughput ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from workerpool_tui.config import Config, ServerConfig, TaskConfig, WorkerConfig  # noqa: E402
from workerpool_tui.core import Engine  # noqa: E402
from workerpool_tui.core.handlers import TaskContext, build_registry, task_type  # noqa: E402
from workerpool_tui.core.models import TaskSpec  # noqa: E402
from workerpool_tui.server import ApiServer  # noqa: E402

WORKERS = 8
TYPES = 5
"""Task types the run spreads over (``--types``): each adds series (counters and two
histograms), so the scrape's cost grows with them."""
SCRAPER = """
import http.client, select, sys, time
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
print("ready", flush=True)
scraping, n = False, 0
while True:  # "go": scrape once a second; "stop": idle and say how many; EOF: leave
    ready, _, _ = select.select([sys.stdin], [], [], 1.0 if scraping else None)
    if ready:
        line = sys.stdin.readline()
        if not line:
            break
        scraping = line.strip() == "go"
        conn.close()  # idle past the keep-alive timeout: the next request reconnects
        if not scraping:
            print(n, flush=True)
            n = 0
        continue
    conn.request("GET", "/metrics")
    assert b"workerpool_tasks_finished_total" in conn.getresponse().read()
    n += 1
"""


async def _noop(ctx: TaskContext, payload: dict[str, Any]) -> None:
    return None


def _engine(types_n: int) -> Engine:
    cfg = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        worker=WorkerConfig(min_workers=WORKERS, max_workers=WORKERS, enable_auto_scaling=False),
        task=TaskConfig(queue_capacity=4096, max_tracked_tasks=20_000),
    )
    types = build_registry(handlers={}, allow_shell=False, entry_points_too=False)
    for i in range(types_n):
        types.add(task_type(f"noop{i}", _noop))
    return Engine(cfg, types=types)


async def _run_for(engine: Engine, seconds: float, types_n: int) -> float:
    """Keep the queue fed for ``seconds``; tasks finished per second."""
    specs = [TaskSpec(type=f"noop{i % types_n}") for i in range(512)]
    before = engine.stats_data.finished_total
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        room = min(512, engine.queue.free)
        if room:
            await engine.submit_many(specs[:room])
        await anyio.lowlevel.checkpoint()
    elapsed = time.perf_counter() - start
    return (engine.stats_data.finished_total - before) / elapsed


async def _measure(duration: float, rounds: int, types_n: int) -> None:
    async with anyio.create_task_group() as tg, _engine(types_n) as engine:
        server: ApiServer = await tg.start(ApiServer(engine, engine.config.server).run)
        await _run_for(engine, 1.0, types_n)  # warm-up
        base: list[float] = []
        scraped: list[float] = []
        # One scraper process for the whole run, idle during the baseline rounds: both
        # kinds of round run beside the same processes and threads.
        proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; outside the timed rounds
            [sys.executable, "-c", SCRAPER, str(server.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        try:
            await anyio.to_thread.run_sync(stdout.readline)
            for r in range(rounds):
                for mode in ("base", "scrape") if r % 2 == 0 else ("scrape", "base"):
                    if mode == "base":
                        base.append(await _run_for(engine, duration, types_n))
                        continue
                    stdin.write("go\n")
                    stdin.flush()
                    scraped.append(await _run_for(engine, duration, types_n))
                    stdin.write("stop\n")
                    stdin.flush()
                    count = int(await anyio.to_thread.run_sync(stdout.readline))
                    print(f"  (scraper: {count} scrapes in {duration:g} s)")
                print(
                    f"round {r + 1}: engine alone {base[-1]:,.0f}/s, scraped {scraped[-1]:,.0f}/s"
                )
        finally:
            proc.kill()
            proc.communicate()
        ratio = statistics.median(scraped) / statistics.median(base)
        print(f"throughput scraped once a second / alone: {ratio:.3f} (median of {rounds})")
        exporter = server.api._metrics
        assert exporter is not None
        n = 200
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            body = await exporter.scrape()
        per = (time.perf_counter() - start) / n
        per_cpu = (time.process_time() - cpu) / n
        print(
            f"one scrape: {per * 1000:.2f} ms wall, {per_cpu * 1000:.2f} ms CPU, {len(body):,}"
            f" bytes ({types_n} task types): {per_cpu * 100:.2f} % of a second of CPU"
        )
        server.begin_shutdown()
        await engine.shutdown()
        server.stop()


def metrics_bench(duration: float, rounds: int, types_n: int = TYPES) -> None:
    print(
        f"\nGET /metrics once a second: {rounds} rounds of {duration:g} s, {WORKERS} workers,"
        f" {types_n} task types"
    )
    anyio.run(_measure, duration, rounds, types_n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--types", type=int, default=TYPES)
    args = parser.parse_args()
    metrics_bench(args.duration, args.rounds, args.types)
