"""The server's background jobs are supervised too (issue #15 §1): a failure is logged with
its traceback; the reaper and the broadcaster restart (WebSocket clients resync), and a
listener that fails is fatal: the engine reports it for the process to exit non-zero."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
import websockets
from server_helpers import running_server

from workerpool_tui.server.app import ApiServer
from workerpool_tui.server.broadcast import Broadcaster

pytestmark = pytest.mark.anyio


async def test_a_failing_reaper_is_logged_and_restarted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = ApiServer._reaper
    runs = 0
    again = anyio.Event()

    async def fails_once(self: ApiServer) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("injected into the reaper")
        again.set()
        await original(self)

    monkeypatch.setattr(ApiServer, "_reaper", fails_once)
    async with running_server() as server:
        with anyio.fail_after(10):
            await again.wait()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
            assert (await c.get("/health")).status_code == 200
        assert server.engine.fatal_error is None
    logged = [r for r in caplog.records if "injected into the reaper" in r.getMessage()]
    assert logged and logged[0].levelno == logging.ERROR and logged[0].exc_info


async def test_a_failing_broadcast_restarts_and_its_clients_resync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Broadcaster._forward
    calls = 0

    async def fails_once(self: Broadcaster, sub: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await sub.get_batch()  # a real delivery, then the failure
            raise RuntimeError("injected into the broadcast")
        await original(self, sub)

    monkeypatch.setattr(Broadcaster, "_forward", fails_once)
    async with running_server() as server:
        url = f"ws://127.0.0.1:{server.port}/api/v1/ws/tasks"
        async with (
            websockets.connect(url) as ws,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c,
        ):
            assert json.loads(await ws.recv())["type"] == "snapshot"
            await c.post("/api/v1/tasks", json={"type": "default_task"})  # breaks it
            kinds: list[str] = []
            with anyio.fail_after(10):
                while "resync" not in kinds:
                    kinds.append(json.loads(await ws.recv())["type"])
            assert json.loads(await ws.recv())["type"] == "snapshot"
            # Events flow again after the restart.
            task = (await c.post("/api/v1/tasks", json={"type": "default_task"})).json()
            with anyio.fail_after(10):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "task" and message["task"]["id"] == task["id"]:
                        break
        assert server.engine.fatal_error is None


async def test_a_failing_listener_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: ApiServer, listener: Any, tg: Any) -> None:
        raise OSError("injected into the listener")

    monkeypatch.setattr(ApiServer, "_accept", broken)
    async with running_server() as server:
        with anyio.fail_after(10):
            reason = await server.engine.wait_fatal()
    assert reason == "API listener failed: OSError: injected into the listener"
