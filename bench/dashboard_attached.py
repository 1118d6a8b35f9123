"""``bench/dashboard.py --attached``: the dashboard attached over WebSocket to a loaded server.

Honest set-up: ``workerpool-tui serve`` runs in a process of its own (memory store,
``--workers`` workers), fed by a second process that POSTs batches of ``default_task``
paced to ``--rate`` tasks/s (2,000 by default). This process runs only the attached
dashboard (``RemoteSource`` over ``/api/v1/ws/tasks``, headless ``App.run_test``), so
the figures are the dashboard's own: every task event crosses the loopback socket,
is decoded and folded here. Keys, every 500 ms: the filter keys ``3`` then ``1`` (their
effect is local: the table refiltered from the remote view and redrawn) and ``p``
twice (pause then resume: the effect needs the server's answer to ``PATCH
/api/v1/pool``). Key -> effect is from the key entering the app's queue to the app
applying its effect (``last_effect_at``), as in the embedded run. Then, the dashboard
gone and the load still on, the same ``PATCH`` calls from a bare client: the floor the
server's own answer sets for the HTTP keys. The server's
throughput is read from the stream's own stats (tasks finished per second).

    .venv/bin/python bench/dashboard.py --attached [--seconds 10] [--rate 2000]

``BENCH_VERBOSE=1`` also prints every press's time and every HTTP call's.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import anyio

from workerpool_tui.client.api import ApiClient, ServerUrl
from workerpool_tui.tui.attach import AttachedApp
from workerpool_tui.tui.remote import RemoteSource

KEY_EVERY_S = 0.5
GOAL_MS = 150.0
FEEDER = """
import sys, time
from workerpool_tui.client.api import ApiClient, ApiError, ServerUrl
url, rate = sys.argv[1], float(sys.argv[2])
step = 0.1
batch = {"tasks": [{"type": "default_task"}] * max(1, round(rate * step))}
api = ApiClient(ServerUrl.parse(url))
next_at = time.monotonic()
while True:
    try:
        api.request("POST", "/api/v1/tasks/batch", batch)
    except ApiError:
        pass  # the queue is full this time: the server is behind
    next_at += step
    time.sleep(max(0.0, next_at - time.monotonic()))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_server(port: int, workers: int, home: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    env.update(
        HOME=home,
        WORKERPOOL__STORE__PATH='""',
        WORKERPOOL__WORKER__MIN_WORKERS=str(workers),
        WORKERPOOL__WORKER__MAX_WORKERS=str(workers),
        WORKERPOOL__WORKER__ENABLE_AUTO_SCALING="false",
        WORKERPOOL__TASK__QUEUE_CAPACITY="10000",
        WORKERPOOL__TASK__MAX_CONCURRENT_TASKS=str(max(workers, 100)),
        WORKERPOOL__TASK__MAX_TRACKED_TASKS="100000",
    )
    cmd = [sys.executable, "-m", "workerpool_tui", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning"],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = ServerUrl.parse(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with ApiClient(server, connect_timeout_s=1) as api:
                api.request("GET", "/health")
            return proc
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("serve did not start")


def _start_feeder(url: str, rate: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", FEEDER, url, str(rate)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _bare_patches(url: str, n: int) -> list[float]:
    """``n`` pause/resume ``PATCH /api/v1/pool`` calls, each on a new connection as the
    dashboard makes them, every 500 ms: their times in ms."""
    server = ServerUrl.parse(url)
    out = []
    for i in range(n):
        time.sleep(KEY_EVERY_S if i % 2 == 0 else 0.0)
        t0 = time.perf_counter()
        with ApiClient(server) as api:
            api.request("PATCH", "/api/v1/pool", {"paused": i % 2 == 0})
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _attached_run(url: str, seconds: float) -> dict[str, list[float]]:
    source = RemoteSource(ServerUrl.parse(url))
    app = AttachedApp(bridge=source)
    calls: list[float] = []
    if os.environ.get("BENCH_VERBOSE"):
        call = source.api.call

        async def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await call(*a, **kw)
            finally:
                calls.append((time.perf_counter() - t0) * 1000)

        source.api.call = timed  # type: ignore[method-assign]
    out: dict[str, list[float]] = {"filter": [], "pause": [], "rate": [], "events": [], "cpu": []}
    out["lag"] = []
    async with app.run_test(size=(160, 48)) as pilot:
        with anyio.fail_after(20):
            while not (source.connected and source.snapshots):
                await pilot.pause(0.05)
        await pilot.pause(1.0)  # start-up layouts, as the embedded run leaves them out

        async def press(key: str) -> float:
            t0 = time.perf_counter()
            app.simulate_key(key)
            with anyio.fail_after(10):
                while app.last_effect_at < t0:  # noqa: ASYNC110 - 1 ms poll of a timestamp
                    await anyio.sleep(0.001)
            return (app.last_effect_at - t0) * 1000

        lags: list[float] = []

        async def probe() -> None:  # how late a 5 ms sleep wakes: the loop's own wait
            while True:
                t0 = time.perf_counter()
                await anyio.sleep(0.005)
                lags.append((time.perf_counter() - t0 - 0.005) * 1000)

        start = time.perf_counter()
        cpu0 = time.process_time()
        events0 = source.events_seen
        second = int(time.time())
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            while time.perf_counter() - start < seconds:
                for key in ("3", "1"):
                    await anyio.sleep(KEY_EVERY_S)
                    out["filter"].append(await press(key))
                await anyio.sleep(KEY_EVERY_S)
                out["pause"].append(await press("p"))  # pause...
                out["pause"].append(await press("p"))  # ...and resume at once
                if int(time.time()) != second:
                    second = int(time.time())
                    out["rate"].append(source.stats().throughput.completed_last_s)
            tg.cancel_scope.cancel()
        out["lag"] = lags
        wall = time.perf_counter() - start
        out["events"].append((source.events_seen - events0) / wall)
        out["cpu"] = [(time.process_time() - cpu0) / wall * 100]
        app.exit(0)
    if calls:
        print("HTTP calls (ms):", sorted(round(c) for c in calls))
    return out


async def run_attached(seconds: float, workers: int, rate: float) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as home:
        server = await anyio.to_thread.run_sync(_start_server, port, workers, home)
        feeder = await anyio.to_thread.run_sync(_start_feeder, url, rate)
        try:
            await anyio.sleep(2.0)  # the load settles
            res = await _attached_run(url, seconds)
            # The floor: the same PATCH calls from a bare client, the dashboard gone.
            res["bare"] = await anyio.to_thread.run_sync(_bare_patches, url, len(res["pause"]))
        finally:
            await anyio.to_thread.run_sync(_stop, feeder)
            await anyio.to_thread.run_sync(_stop, server)
    keys = res["filter"] + res["pause"]
    if os.environ.get("BENCH_VERBOSE"):
        print("presses (ms):", [round(k) for k in keys])
    print(
        f"attached over WebSocket: serve in its own process ({workers} workers), fed"
        f" {rate:,.0f} tasks/s by a third process; {seconds:g} s"
    )
    rates = res["rate"]
    print(
        f"server finished (its stats): median {statistics.median(rates):,.0f} tasks/s"
        f" (min {min(rates):,.0f}, max {max(rates):,.0f}); dashboard folded"
        f" {res['events'][0]:,.0f} stream messages/s using {res['cpu'][0]:.0f}% of a core"
    )
    for name, ms in (
        ("filter keys (local)", res["filter"]),
        ("pause keys (HTTP)", res["pause"]),
        ("bare client PATCH", res["bare"]),
    ):
        print(
            f"key -> effect, {name:20} p50 {statistics.median(ms):6.1f}  p99"
            f" {_pct(ms, 0.99):6.1f}  max {max(ms):6.1f} ms ({len(ms)} presses)"
        )
    lag = res["lag"]
    print(
        f"loop turn wait (ms): p50 {statistics.median(lag):6.1f}  p99 {_pct(lag, 0.99):6.1f}"
        f"  max {max(lag):6.1f} ({len(lag)} samples of a 5 ms sleep in the dashboard's loop)"
    )
    print(
        f"key -> effect, all:                  p50 {statistics.median(keys):6.1f}  p99"
        f" {_pct(keys, 0.99):6.1f} ms (goal p99 < {GOAL_MS:.0f})"
    )
