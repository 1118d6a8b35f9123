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

WebSocket fan-out (``bench/ws_fanout.py``): ``--clients`` clients in a separate process
receive every task event while our engine runs ``--tasks`` short tasks, then the same
clients take as many messages from a ``websockets`` ``broadcast()`` server.

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
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# This file is named like the standard library's ``http`` package: keep its directory behind
# the standard library so that a later ``import http`` (httpx, websockets) finds the real one.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))

from servers import (  # noqa: E402
    BASELINE_SERVERS,
    PY,
    free_port,
    our_server,
    stop,
    uvicorn_server,
    wait_port,
)
from ws_fanout import ws_bench  # noqa: E402

POST_BODY = b'{"type":"default_task","payload":{"n":1}}'


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


def main() -> None:
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
