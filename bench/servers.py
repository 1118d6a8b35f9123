"""The servers ``bench/http.py`` and ``bench/ws_fanout.py`` measure, each as a child process
on a free loopback port: ours (``workerpool-tui serve``, memory store) and uvicorn with the
minimal ASGI app of ``bench/baselines``. Each is waited for until it listens and ended by
its id (terminate, then kill after 40 s)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINES = HERE / "baselines"
PY = sys.executable


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
