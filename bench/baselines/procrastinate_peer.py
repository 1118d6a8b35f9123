"""Procrastinate 3.10 as the cluster benchmark's peer (``bench/cluster.py``), in three roles:

``install``  creates Procrastinate's tables in ``--schema`` (a schema of the run's own);
``worker``   one worker process: ``run_worker_async(concurrency=--concurrency)`` with a
             no-op task, until SIGTERM (Procrastinate's own signal handling);
``submit``   defers ``--count`` no-op jobs with ``batch_defer_async`` in lists of
             ``--batch``, then prints its result.

Every connection gets ``search_path`` set to the schema (libpq ``options``), which is how
Procrastinate is placed outside ``public``. The connection pool may grow to the
concurrency plus two (psycopg_pool's default of 4 would make most of 16 jobs wait for a
connection). ``submit`` speaks the handshake of ``bench/cluster_load.py``: ``ready``,
``go``, ``result {json}``, ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

import procrastinate


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["install", "worker", "submit"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    connector = procrastinate.PsycopgConnector(
        conninfo=args.dsn,
        kwargs={"options": f"-c search_path={args.schema}"},
        min_size=2,
        max_size=args.concurrency + 2,
    )
    app = procrastinate.App(connector=connector)

    @app.task(name="noop")
    async def noop() -> None:
        return None

    async with app.open_async():
        if args.role == "install":
            await app.schema_manager.apply_schema_async()
        elif args.role == "worker":
            print("ready", flush=True)
            await app.run_worker_async(concurrency=args.concurrency, wait=True)
        else:
            print("ready", flush=True)
            if sys.stdin.readline().strip() != "go":
                return
            cpu0, t0 = cpu_now(), time.time()
            done = 0
            while done < args.count:
                n = min(args.batch, args.count - done)
                await noop.batch_defer_async(*([{}] * n))
                done += n
            t1, cpu1 = time.time(), cpu_now()
            result = {"t0": t0, "t1": t1, "cpu_s": cpu1 - cpu0, "submitted": done, "errors": []}
            print("result " + json.dumps(result), flush=True)
            sys.stdin.readline()


if __name__ == "__main__":
    asyncio.run(main())
