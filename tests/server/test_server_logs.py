"""``GET /api/v1/tasks/{id}/logs``: lines from a number on, and the long poll that follows
them, against a real server running a real shell task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from server_helpers import make_config, running_server

pytestmark = pytest.mark.anyio


def _client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


def _script(gate: Path) -> str:
    # Two lines, then wait for the test to create the gate file, then one more and fail.
    return f"echo one; echo two; while [ ! -e '{gate}' ]; do sleep 0.02; done; echo three; exit 3"


async def _submit(c: httpx.AsyncClient, command: str) -> dict[str, Any]:
    resp = await c.post(
        "/api/v1/tasks", json={"type": "shell_task", "payload": {"command": command}}
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_logs_follow_until_the_task_ends(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    cfg = make_config(task={"allow_shell": True})
    async with running_server(cfg) as server, _client(server.port) as c:
        task = await _submit(c, _script(gate))
        seen: list[str] = []
        since = 0
        with anyio.fail_after(10):
            while len(seen) < 2:  # each answer comes when a line does
                page = await c.get(f"/api/v1/tasks/{task['id']}/logs?since={since}&wait=5")
                body = page.json()
                assert page.status_code == 200 and body["since"] == since
                seen += body["lines"]
                since = body["next"]
        assert seen == ["one", "two"] and since == 2 and body["final"] is False

        # Nothing new: a short wait answers empty, at the same number.
        quiet = (await c.get(f"/api/v1/tasks/{task['id']}/logs?since=2&wait=100ms")).json()
        assert quiet["lines"] == [] and quiet["next"] == 2 and quiet["status"] == "running"

        async def release() -> None:
            await anyio.sleep(0.2)
            gate.touch()

        async with anyio.create_task_group() as tg:
            tg.start_soon(release)
            with anyio.fail_after(10):
                while True:
                    body = (
                        await c.get(f"/api/v1/tasks/{task['id'][:6]}/logs?since={since}&wait=5")
                    ).json()
                    seen += body["lines"]
                    since = body["next"]
                    if body["final"]:
                        break
        assert seen == ["one", "two", "three"]
        assert body["status"] == "failed"

        # From the start, by prefix; a number past the end is just the end.
        whole = (await c.get(f"/api/v1/tasks/{task['id'][:5]}/logs")).json()
        assert whole["lines"] == ["one", "two", "three"] and whole["since"] == 0
        past = (await c.get(f"/api/v1/tasks/{task['id']}/logs?since=99")).json()
        assert past == {**whole, "since": 3, "lines": []}


async def test_logs_wait_ends_when_the_task_ends_without_a_line(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    command = f"while [ ! -e '{gate}' ]; do sleep 0.02; done"
    cfg = make_config(task={"allow_shell": True})
    async with running_server(cfg) as server, _client(server.port) as c:
        task = await _submit(c, command)

        async def release() -> None:
            await anyio.sleep(0.2)
            gate.touch()

        async with anyio.create_task_group() as tg:
            tg.start_soon(release)
            with anyio.fail_after(10):
                body = (await c.get(f"/api/v1/tasks/{task['id']}/logs?wait=20")).json()
        assert body["final"] is True and body["status"] == "completed"
        assert body["lines"] == [] and body["next"] == 0


@pytest.mark.parametrize(
    "query", ["since=-1", "since=x", "since=1.5", "wait=31", "wait=soon", "wait=-1s"]
)
async def test_logs_refuse_bad_queries(query: str) -> None:
    async with running_server() as server, _client(server.port) as c:
        task = (await c.post("/api/v1/tasks", json={"type": "default_task"})).json()
        resp = await c.get(f"/api/v1/tasks/{task['id']}/logs?{query}")
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "invalid_request"
        missing = await c.get("/api/v1/tasks/ffffffffffffffff/logs")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("wait", ["0", "1e-3", "2.5E-1", "0.", "250ms"])
async def test_logs_wait_takes_any_number_notation(wait: str) -> None:
    # The OpenAPI document says "number": every way JSON Schema writes one is taken.
    async with running_server() as server, _client(server.port) as c:
        task = (await c.post("/api/v1/tasks", json={"type": "default_task"})).json()
        resp = await c.get(f"/api/v1/tasks/{task['id']}/logs?since=99&wait={wait}")
        assert resp.status_code == 200, resp.text


def test_log_numbers_survive_dropped_lines() -> None:
    from workerpool_tui.core.logs import log_slice
    from workerpool_tui.core.models import TASK_LOG_LINES, Task

    task = Task(id="t1", type="x", payload={})
    for i in range(TASK_LOG_LINES + 5):
        task.add_log(f"l{i}")
    assert task.logs_dropped == 5
    old = log_slice(task, 0)
    assert old.since == 5 and old.lines[0] == "l5" and old.next == TASK_LOG_LINES + 5
    tail = log_slice(task, TASK_LOG_LINES + 3)
    assert tail.lines == [f"l{TASK_LOG_LINES + 3}", f"l{TASK_LOG_LINES + 4}"]
