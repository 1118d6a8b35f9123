"""``workerpool-tui serve`` as a user runs it (a real process), and the runtime wiring."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from server_helpers import make_config
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from workerpool_tui.core import TaskSpec
from workerpool_tui.runtime import Runtime

pytestmark = pytest.mark.anyio
LISTENING = re.compile(r"API listening on (http://127\.0\.0\.1:(\d+))")


def serve_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    env.update(
        WORKERPOOL__STORE__PATH="",
        WORKERPOOL__LOGGER__FORMAT="json",
        WORKERPOOL__LOGGER__OUTPUT="stdout",
        WORKERPOOL__WORKER__SHUTDOWN_TIMEOUT="5s",
        **extra,
    )
    return env


async def test_serve_sigterm_with_running_tasks_exits_0(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "workerpool_tui", "serve", "--port", "0", "--log-level", "info"]
    async with await anyio.open_process(cmd, env=serve_env(), cwd=tmp_path) as proc:
        assert proc.stdout is not None
        out = b""
        try:
            with anyio.fail_after(15):
                while not (match := LISTENING.search(out.decode(errors="replace"))):
                    out += await proc.stdout.receive()
            base = match.group(1)
            async with httpx.AsyncClient(base_url=base, timeout=5) as c:
                ids = []
                for _ in range(3):
                    r = await c.post(
                        "/api/v1/tasks",
                        json={"type": "long_running_task", "payload": {"duration": 1, "steps": 5}},
                    )
                    assert r.status_code == 201
                    ids.append(r.json()["id"])
                with anyio.fail_after(5):
                    while True:
                        if (await c.get("/api/v1/pool")).json()["busy"] >= 3:
                            break
                        await anyio.sleep(0.02)
            async with connect(base.replace("http", "ws") + "/api/v1/ws/tasks") as ws:
                await ws.recv()  # snapshot
                proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as closed, anyio.fail_after(15):
                    while True:
                        message = json.loads(await ws.recv())
                        if message["type"] == "task" and message["event"] == "completed":
                            ids.remove(message["task"]["id"])
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
                assert ids == []  # every running task finished inside the grace period
            with anyio.fail_after(15):
                rc = await proc.wait()
            assert rc == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                with anyio.CancelScope(shield=True):
                    await proc.wait()


async def test_serve_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "workerpool_tui", "serve", "--port", str(port)]
        with anyio.fail_after(20):
            result = await anyio.run_process(cmd, env=serve_env(), cwd=tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and f"port {port} is in use" in lines[0]


async def test_serve_refuses_shell_on_open_host_without_token(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET) is never bound: the refusal comes before any listening.
    cmd = [sys.executable, "-m", "workerpool_tui", "serve", "--host", "192.0.2.1", "--port", "0"]
    env = serve_env(WORKERPOOL__TASK__ALLOW_SHELL="true")
    with anyio.fail_after(20):
        result = await anyio.run_process(cmd, env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "task.allow_shell" in lines[0] and "auth_token" in lines[0]


async def test_runtime_exposes_server_and_survives_a_taken_port() -> None:
    async with Runtime(make_config(), with_server=True) as rt:
        assert rt.server is not None and rt.server_error is None
        assert rt.server.port > 0
        assert rt.server.address == f"http://127.0.0.1:{rt.server.port}"
        assert rt.server.ws_clients == 0
        taken = rt.server.port
        cfg = make_config(server={"port": taken})
        async with Runtime(cfg, with_server=True) as second:
            assert second.server is None
            assert second.server_error == f"port {taken} is in use"
            # The engine runs regardless (the dashboard shows why the API is off).
            [task] = await second.engine.submit_many([TaskSpec(type="default_task")])
            with anyio.fail_after(5):
                finished = await second.engine.wait_finished(task.id)
            assert finished.status.value == "completed"
