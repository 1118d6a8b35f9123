"""HTTP and WebSocket benchmark: our server against baselines measured in the same run.

    .venv/bin/python bench/http.py [--duration 3] [--rounds 3] [--tasks 2000] [--clients 100]
    .venv/bin/python bench/http.py --only callgrind [--requests 1000]
    .venv/bin/python bench/http.py --only metrics [--duration 5] [--rounds 3] [--types 5]

With the defaults a run takes under two minutes (HTTP about 60 s, the fan-out the rest).

HTTP: the same trivial JSON endpoints on loopback, ours (``workerpool-tui serve``, on
uvloop when installed: ``[server] loop = "auto"``) and two uvicorn baselines with a minimal
ASGI app (``bench/baselines/uvicorn_app.py``): ``--http h11 --loop asyncio`` (pure Python,
as ours was before httptools) and ``--http httptools --loop uvloop`` (what
``uvicorn[standard]`` deploys), each in its own process, loaded in turn by ``wrk -t2 -c50``
from another process (a Python keep-alive load generator when ``wrk`` is absent). Prints
req/s of ``GET /health`` and ``POST /api/v1/tasks`` (ours runs ``default_task``; uvicorn's
app answers the same JSON without work), ratios against both, and the load average before
and after (the machine may be shared).

WebSocket fan-out: ``--clients`` clients in a separate process receive every task event
while our engine runs ``--tasks`` short tasks; then a ``websockets`` ``broadcast()`` server
(``bench/ws_baseline.py``) sends the same number of messages of the same average size to
the same clients. Prints delivered messages per second and the ratio.

Callgrind (``--only callgrind``, needs valgrind): each server (ours and both baselines) runs
under ``valgrind --tool=callgrind`` in turn; after a warm-up the counters are zeroed, a
fixed number of requests is sent over 10 keep-alive connections, and the instructions the
server process executed per request are printed: a figure that does not depend on the
machine's load.

Metrics (``--only metrics``, also part of a full run): what scraping ``GET /metrics`` once a
second costs the engine's throughput (``bench/scrape.py``).

Everything is bounded in time and count; every process started here is ended by its id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This file is named like the standard library's ``http`` package: keep its directory off
# the import path so that a later ``import http`` (httpx, websockets) finds the real one.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
BASELINES = HERE / "baselines"
PY = sys.executable
POST_BODY = b'{"type":"default_task","payload":{"n":1}}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on port {port} after {deadline_s}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def our_server(port: int, wrapper: list[str] | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    env.update(
        WORKERPOOL__STORE__PATH="",
        WORKERPOOL__LOGGER__LEVEL="warning",
        WORKERPOOL__TASK__QUEUE_CAPACITY="100000",
        WORKERPOOL__TASK__MAX_TRACKED_TASKS="500000",
        WORKERPOOL__WORKER__SHUTDOWN_TIMEOUT="2s",
    )
    cmd = [*(wrapper or []), PY, "-m", "workerpool_tui", "serve", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())


BASELINE_SERVERS = {"uvicorn-h11": ("h11", "asyncio"), "uvicorn-std": ("httptools", "uvloop")}
"""uvicorn's pure-Python configuration and uvicorn[standard]'s (the one users deploy)."""


def uvicorn_server(
    port: int, name: str, wrapper: list[str] | None = None
) -> subprocess.Popen[bytes]:
    http, loop = BASELINE_SERVERS[name]
    cmd = [
        *(wrapper or []),
        PY,
        "-m",
        "uvicorn",
        "--http",
        http,
        "--loop",
        loop,
        "--no-access-log",
        "--log-level",
        "warning",
        "--port",
        str(port),
        "--app-dir",
        str(BASELINES),
        "uvicorn_app:app",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------- HTTP load
def wrk(port: int, path: str, post: bool, duration: int) -> tuple[float, int]:
    """req/s and non-2xx count from ``wrk -t2 -c50``."""
    args = ["wrk", "-t2", "-c50", f"-d{duration}s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if post:
            script.write(
                'wrk.method = "POST"\n'
                f"wrk.body = '{POST_BODY.decode()}'\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
    try:
        out = subprocess.run(
            [*args, "-s", script.name, f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            timeout=duration + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def request_bytes(path: str, post: bool) -> bytes:
    """One keep-alive request as the load generators send it."""
    if not post:
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(POST_BODY)}\r\n\r\n".encode() + POST_BODY


def python_load(port: int, path: str, post: bool, duration: int) -> tuple[float, int]:
    """The fallback load generator: 50 keep-alive connections in a child process."""
    code = f"""
import asyncio, time
async def one(stop, counts):
    r, w = await asyncio.open_connection("127.0.0.1", {port})
    req = {request_bytes(path, post)!r}
    while time.monotonic() < stop:
        w.write(req)
        head = await r.readuntil(b"\\r\\n\\r\\n")
        n = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
        await r.readexactly(n)
        counts[0] += 1
        counts[1] += not head.startswith(b"HTTP/1.1 2")
    w.close()
async def main():
    counts = [0, 0]
    stop = time.monotonic() + {duration}
    await asyncio.gather(*(one(stop, counts) for _ in range(50)))
    print(counts[0] / {duration}, counts[1])
asyncio.run(main())
"""
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=duration + 30)
    rps, bad = out.stdout.split()
    return float(rps), int(bad)


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def http_bench(duration: int, rounds: int) -> dict[str, float]:
    """The three servers run side by side, loaded in turn (ours, uvicorn-h11, uvicorn-std,
    ours, ...); the machine is shared and noisy, so each figure is the median of ``rounds``
    runs."""
    load = wrk if shutil.which("wrk") else python_load
    tool = "wrk -t2 -c50" if load is wrk else "python load generator (50 connections)"
    print(f"HTTP: {tool}, {duration}s per run, median of {rounds} interleaved runs, loopback")
    print(f"  load average before: {load_average()}")
    ports = {"ours": free_port(), **{name: free_port() for name in BASELINE_SERVERS}}
    procs = {"ours": our_server(ports["ours"])}
    for name in BASELINE_SERVERS:
        procs[name] = uvicorn_server(ports[name], name)
    runs: dict[str, list[float]] = {}
    cases = (("GET /health", "/health", False), ("POST /api/v1/tasks", "/api/v1/tasks", True))
    try:
        for port in ports.values():
            wait_port(port)
            load(port, "/health", False, 1)  # warm-up
        for _ in range(rounds):
            for label, path, post in cases:
                for name, port in ports.items():
                    rps, bad = load(port, path, post, duration)
                    if bad:
                        print(f"  warning: {name} {label}: {bad} non-2xx responses")
                    runs.setdefault(f"{name} {label}", []).append(rps)
    finally:
        for proc in procs.values():
            stop(proc)
    print(f"  load average after:  {load_average()}")
    results = {key: statistics.median(values) for key, values in runs.items()}
    for key, value in results.items():
        name, label = key.split(" ", 1)
        each = ", ".join(f"{v:,.0f}" for v in runs[key])
        print(f"  {name:12} {label:20} {value:10,.0f} req/s   (runs: {each})")
    for name in BASELINE_SERVERS:
        for label, _, _ in cases:
            ratio = results[f"ours {label}"] / results[f"{name} {label}"]
            print(f"  ratio ours/{name} {label:20} {ratio:5.2f}x")
    return results


# ---------------------------------------------------------------- instruction counts
def fixed_load(port: int, path: str, post: bool, requests: int, conns: int = 10) -> None:
    """Exactly ``requests`` requests over ``conns`` keep-alive connections, then return."""
    code = f"""
import asyncio
async def one(n):
    r, w = await asyncio.open_connection("127.0.0.1", {port})
    req = {request_bytes(path, post)!r}
    for _ in range(n):
        w.write(req)
        head = await r.readuntil(b"\\r\\n\\r\\n")
        assert head.startswith(b"HTTP/1.1 2"), head
        k = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
        await r.readexactly(k)
    w.close()
async def main():
    await asyncio.wait_for(asyncio.gather(*(one({requests // conns}) for _ in range({conns}))), 900)
asyncio.run(main())
"""
    subprocess.run([PY, "-c", code], check=True, timeout=960)


def callgrind_bench(requests: int) -> None:
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("callgrind needs valgrind (apt-get install valgrind)")
    print(f"callgrind: instructions of each server process per request, {requests} requests")
    for name in ("ours", *BASELINE_SERVERS):
        callgrind_one(name, requests)


def callgrind_one(name: str, requests: int) -> None:
    port = free_port()
    out_dir = tempfile.mkdtemp(prefix="httpbench-callgrind-")
    wrapper = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.%p"]
    proc = our_server(port, wrapper) if name == "ours" else uvicorn_server(port, name, wrapper)
    totals: dict[str, int] = {}
    try:
        wait_port(port, deadline_s=400)
        for label, path, post in (("get", "/health", False), ("post", "/api/v1/tasks", True)):
            fixed_load(port, path, post, 200)  # warm-up
            ctl = ["callgrind_control"]
            subprocess.run([*ctl, "-z", str(proc.pid)], check=True, capture_output=True)
            fixed_load(port, path, post, requests)
            subprocess.run([*ctl, "-d", label, str(proc.pid)], check=True, capture_output=True)
    finally:
        stop(proc)
    for dump in sorted(Path(out_dir).glob("cg.*")):
        text = dump.read_text(errors="replace")
        trigger = re.search(
            r"^desc: Trigger: Client Request: (\w+)|^desc: Trigger: dump (\w+)", text, re.M
        )
        summary = re.search(r"^summary: (\d+)", text, re.M)
        if trigger and summary:
            totals[trigger.group(1) or trigger.group(2)] = int(summary.group(1))
        dump.unlink()
    os.rmdir(out_dir)
    names = {"get": "GET /health", "post": "POST /api/v1/tasks"}
    for label, total in sorted(totals.items()):
        print(f"  {name:12} {names[label]:20} {total // requests:10,} instructions per request")


# ---------------------------------------------------------------- WebSocket fan-out
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
    parser.add_argument("--duration", type=int, default=3, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per figure")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks in the fan-out run")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--only", choices=["http", "ws", "callgrind", "metrics"], default=None)
    parser.add_argument("--types", type=int, default=5, help="task types in the metrics run")
    parser.add_argument("--requests", type=int, default=1000, help="requests under callgrind")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.only in (None, "http"):
        http_bench(args.duration, args.rounds)
    if args.only in (None, "ws"):
        ws_bench(args.clients, args.tasks)
    if args.only in (None, "metrics"):
        import importlib.util

        spec = importlib.util.spec_from_file_location("scrape", HERE / "scrape.py")
        assert spec is not None and spec.loader is not None
        scrape = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(scrape)
        scrape.metrics_bench(args.duration, args.rounds, args.types)
    if args.only == "callgrind":
        callgrind_bench(args.requests)


if __name__ == "__main__":
    main()
