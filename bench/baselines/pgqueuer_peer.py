"""PgQueuer 1.6 as the cluster benchmark's peer (``bench/cluster.py``), in three roles:

``install``  creates PgQueuer's tables in ``--schema`` (a schema of the run's own);
``worker``   one worker process: a ``QueueManager`` over asyncpg with a no-op entrypoint,
             run with PgQueuer's defaults (``batch_size=10``) until SIGTERM;
``submit``   enqueues ``--count`` no-op jobs in lists of ``--batch`` (one statement
             each), then prints its result.

The schema and a NOTIFY channel of the run's own go through PgQueuer's own settings
(``PGQUEUER_SCHEMA``, ``PGQUEUER_CHANNEL``), so runs never meet. ``submit`` speaks the
handshake of ``bench/cluster_load.py``: ``ready``, ``go``, ``result {json}``, ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import time


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["install", "worker", "submit"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    # Read by PgQueuer's settings when its objects are made.
    os.environ["PGQUEUER_SCHEMA"] = args.schema
    os.environ["PGQUEUER_CHANNEL"] = f"{args.schema}_ch"

    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries, QueueManager

    conn = await asyncpg.connect(args.dsn)
    queries = Queries(AsyncpgDriver(conn))
    if args.role == "install":
        await queries.install()
    elif args.role == "worker":
        qm = QueueManager(queries)

        @qm.entrypoint("noop")
        async def noop(job: object) -> None:
            return None

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, qm.shutdown.set)
        print("ready", flush=True)
        await qm.run()  # PgQueuer's defaults: batch_size=10, continuous
    else:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        cpu0, t0 = cpu_now(), time.time()
        done = 0
        while done < args.count:
            n = min(args.batch, args.count - done)
            await queries.enqueue(["noop"] * n, [b"{}"] * n, [0] * n)
            done += n
        t1, cpu1 = time.time(), cpu_now()
        result = {"t0": t0, "t1": t1, "cpu_s": cpu1 - cpu0, "submitted": done, "errors": []}
        print("result " + json.dumps(result), flush=True)
        sys.stdin.readline()
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
