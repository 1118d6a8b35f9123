"""WebSocket fan-out benchmark (run by ``bench/http.py``, or alone:
``.venv/bin/python bench/ws_fanout.py [--clients 100] [--tasks 2000]``).

``--clients`` clients in a separate process receive every task event while our engine runs
``--tasks`` short tasks; then a ``websockets`` ``broadcast()`` server
(``bench/baselines/ws_baseline.py``) sends the same number of messages of the same average
size to the same clients. Prints delivered messages per second and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Named like nothing in the standard library, but beside ``http.py``, which is: keep this
# directory behind the standard library so that ``import http`` (websockets, httpx) finds
# the real one.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))

from servers import BASELINES, PY, free_port, our_server, stop, wait_port  # noqa: E402


async def _clients(
    url: str, n: int, mode: str, tasks: int, per_client: int, size: int, api: str
) -> dict[str, Any]:
    """Child process: ``n`` clients count ``task`` messages until each has them all."""
    from websockets.asyncio.client import connect

    conns = [await connect(url, max_size=None, max_queue=None, compression=None) for _ in range(n)]
    first: list[float] = []
    last = [0.0]
    received = [0] * n
    nbytes = [0]
    resyncs = [0]

    async def follow(i: int) -> None:
        ws = conns[i]
        completed = 0
        while True:
            text = await ws.recv()
            if '"type":"task"' not in text[:20]:
                resyncs[0] += text.startswith('{"type":"resync"')
                continue
            now = time.perf_counter()
            if not first:
                first.append(now)
            last[0] = now
            received[i] += 1
            if i == 0:
                nbytes[0] += len(text)
            if mode == "ours":
                completed += '"event":"completed"' in text[:40]
                if completed >= tasks:
                    return
            elif received[i] >= per_client:
                return

    followers = [asyncio.create_task(follow(i)) for i in range(n)]
    await asyncio.sleep(0.5)  # every client has its snapshot / is registered
    if mode == "ours":
        import httpx

        async with httpx.AsyncClient(base_url=api, timeout=30) as c:
            for start in range(0, tasks, 1000):
                batch = [
                    {"type": "default_task", "payload": {"i": i}}
                    for i in range(start, min(tasks, start + 1000))
                ]
                r = await c.post("/api/v1/tasks/batch", json={"tasks": batch})
                r.raise_for_status()
    else:
        await conns[0].send(f"go {per_client} {size}")
    done, pending = await asyncio.wait(followers, timeout=120)
    for t in pending:
        t.cancel()
    for ws in conns:
        await ws.close()
    total = sum(received)
    elapsed = last[0] - first[0] if first else 0.0
    return {
        "delivered": total,
        "complete_clients": len(done),
        "elapsed_s": elapsed,
        "per_client": statistics.median(received),
        "avg_size": nbytes[0] / max(1, received[0]),
        "resyncs": resyncs[0],
    }


def run_clients(
    url: str, n: int, mode: str, tasks: int = 0, per_client: int = 0, size: int = 0, api: str = ""
) -> dict[str, Any]:
    out = subprocess.run(
        [PY, __file__, "_clients", url, str(n), mode, str(tasks), str(per_client), str(size), api],
        capture_output=True,
        text=True,
        timeout=200,
    )
    if out.returncode:
        raise SystemExit(f"client process failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def ws_bench(n: int, tasks: int) -> None:
    print(f"WebSocket fan-out: {n} clients in one separate process, {tasks} default_task tasks")
    port = free_port()
    proc = our_server(port)
    try:
        wait_port(port)
        ours = run_clients(
            f"ws://127.0.0.1:{port}/api/v1/ws/tasks",
            n,
            "ours",
            tasks=tasks,
            api=f"http://127.0.0.1:{port}",
        )
    finally:
        stop(proc)
    port = free_port()
    base = subprocess.Popen(
        [PY, str(BASELINES / "ws_baseline.py"), str(port)], stdout=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        theirs = run_clients(
            f"ws://127.0.0.1:{port}/",
            n,
            "baseline",
            per_client=int(ours["per_client"]),
            size=int(ours["avg_size"]),
        )
    finally:
        stop(base)
    rates = {}
    for name, r in (("ours", ours), ("websockets broadcast()", theirs)):
        rate = r["delivered"] / r["elapsed_s"] if r["elapsed_s"] else 0.0
        rates[name] = rate
        print(
            f"  {name:24} {rate:10,.0f} msg/s delivered  ({r['delivered']:,} messages of "
            f"~{r['avg_size']:.0f} B in {r['elapsed_s']:.2f}s; {r['complete_clients']}/{n} "
            f"clients got all; resyncs {r['resyncs']})"
        )
    print(
        f"  ratio ours/websockets-broadcast {rates['ours'] / rates['websockets broadcast()']:5.2f}x"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_clients":
        url, n, mode, tasks, per_client, size = sys.argv[2:8]
        api = sys.argv[8] if len(sys.argv) > 8 else ""
        result = asyncio.run(
            _clients(url, int(n), mode, int(tasks), int(per_client), int(size), api)
        )
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks in the fan-out run")
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args()
    ws_bench(args.clients, args.tasks)


if __name__ == "__main__":
    main()
