"""``POST /api/v1/tasks/bulk``: cancel, retry and delete by filter on a real server; one
summarising WebSocket message instead of one per task; hostile bodies change nothing."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
import websockets
from server_helpers import make_config, running_server

pytestmark = pytest.mark.anyio


def _client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)


async def _bulk(c: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = await c.post("/api/v1/tasks/bulk", json=body)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def _counts(c: httpx.AsyncClient) -> dict[str, int]:
    counts: dict[str, int] = (await c.get("/api/v1/tasks/status/stats")).json()["tasks"]
    return counts


async def test_bulk_cancel_retry_delete_by_filter() -> None:
    cfg = make_config(worker={"min_workers": 1, "max_workers": 1, "enable_auto_scaling": False})
    async with running_server(cfg) as server, _client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        slow = [{"type": "long_running_task", "payload": {"duration": 60}} for _ in range(3)]
        quick = [{"type": "default_task"} for _ in range(5)]
        await c.post("/api/v1/tasks/batch", json={"tasks": slow + quick})

        dry = await _bulk(
            c, {"action": "cancel", "filter": {"type": "long_running_task"}, "dry_run": True}
        )
        assert dry == {"matched": 3, "changed": 3, "skipped": {}}
        assert (await _counts(c))["pending"] == 8  # a dry run changes nothing

        done = await _bulk(
            c, {"action": "cancel", "filter": {"status": ["pending"], "type": "long_running_task"}}
        )
        assert done == {"matched": 3, "changed": 3, "skipped": {}}
        assert (await _counts(c))["cancelled"] == 3

        again = await _bulk(c, {"action": "cancel", "filter": {"type": "long_running_task"}})
        assert again == {"matched": 3, "changed": 0, "skipped": {"already_final": 3}}

        # delete: only final tasks; the pending ones are skipped and stay.
        gone = await _bulk(c, {"action": "delete", "filter": {}})
        assert gone == {"matched": 8, "changed": 3, "skipped": {"not_final": 5}}
        listed = (await c.get("/api/v1/tasks")).json()
        assert listed["total"] == 5
        assert all(t["type"] == "default_task" for t in listed["tasks"])

        # retry what failed: new tasks linked by retry_of.
        await c.patch("/api/v1/pool", json={"paused": False})
        fails = [{"type": "default_task", "payload": {"fail": True}} for _ in range(2)]
        await c.post("/api/v1/tasks/batch", json={"tasks": fails})
        with anyio.fail_after(10):
            while True:
                counts = await _counts(c)
                if counts["failed"] == 2 and counts["completed"] == 5:
                    break
                await anyio.sleep(0.02)
        retried = await _bulk(c, {"action": "retry", "filter": {"status": ["failed"]}})
        assert retried == {"matched": 2, "changed": 2, "skipped": {}}
        page = (await c.get("/api/v1/tasks", params={"limit": 2})).json()["tasks"]
        assert all(t["retry_of"] for t in page)


async def test_bulk_by_ids_prefixes_and_age() -> None:
    async with running_server() as server, _client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        tasks = (
            await c.post("/api/v1/tasks/batch", json={"tasks": [{"type": "default_task"}] * 4})
        ).json()["tasks"]
        ids = [tasks[0]["id"], tasks[1]["id"][:8]]
        out = await _bulk(c, {"action": "cancel", "filter": {"ids": ids}})
        assert out == {"matched": 2, "changed": 2, "skipped": {}}
        young = await _bulk(c, {"action": "cancel", "filter": {"older_than": "1h"}})
        assert young["matched"] == 0
        old = await _bulk(c, {"action": "cancel", "filter": {"older_than": 0}})
        assert old == {"matched": 4, "changed": 2, "skipped": {"already_final": 2}}


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode"},
        {"action": "cancel", "filter": {"status": ["sleeping"]}},
        {"action": "cancel", "filter": {"older_than": "soon"}},
        {"action": "cancel", "filter": {"older_than": -1}},
        {"action": "cancel", "filter": {"colour": "red"}},
        {"action": "delete", "filter": {}, "extra": 1},
    ],
)
async def test_bulk_refuses_hostile_bodies_and_changes_nothing(body: dict[str, Any]) -> None:
    async with running_server() as server, _client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        await c.post("/api/v1/tasks", json={"type": "default_task"})
        resp = await c.post("/api/v1/tasks/bulk", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "invalid_request"
        assert (await _counts(c))["pending"] == 1


async def test_bulk_by_an_unknown_id_is_404_and_changes_nothing() -> None:
    async with running_server() as server, _client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        task = (await c.post("/api/v1/tasks", json={"type": "default_task"})).json()
        body = {"action": "cancel", "filter": {"ids": [task["id"], "ffffffffffff"]}}
        resp = await c.post("/api/v1/tasks/bulk", json=body)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
        assert (await _counts(c))["pending"] == 1


async def test_one_bulk_message_then_a_fresh_snapshot_over_websocket() -> None:
    async with running_server() as server, _client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        batch = {"tasks": [{"type": "default_task"}] * 500}
        await c.post("/api/v1/tasks/batch", json=batch)
        url = f"ws://127.0.0.1:{server.port}/api/v1/ws/tasks"
        async with websockets.connect(url) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "snapshot"
            await _bulk(c, {"action": "cancel", "filter": {"status": ["pending"]}})
            seen: list[dict[str, Any]] = []
            with anyio.fail_after(10):
                while not seen or seen[-1]["type"] != "snapshot":
                    msg = json.loads(await ws.recv())
                    if msg["type"] != "stats":
                        seen.append(msg)
        kinds = [m["type"] for m in seen]
        assert kinds == ["bulk", "snapshot"], kinds  # no task events: one summary
        assert seen[0]["action"] == "cancel" and seen[0]["changed"] == 500
        assert all(t["status"] == "cancelled" for t in seen[1]["tasks"])


async def test_bulk_cancel_of_many_keeps_the_loop_responsive() -> None:
    cfg = make_config(
        task={"queue_capacity": 100_000, "max_tracked_tasks": 200_000},
        worker={"min_workers": 1, "max_workers": 1},
    )
    async with running_server(cfg) as server, _client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        for _ in range(20):
            await c.post("/api/v1/tasks/batch", json={"tasks": [{"type": "default_task"}] * 1000})
        out = await _bulk(c, {"action": "cancel", "filter": {"status": ["pending"]}})
        assert out == {"matched": 20_000, "changed": 20_000, "skipped": {}}
        gone = await _bulk(c, {"action": "delete", "filter": {"status": ["cancelled"]}})
        assert gone["changed"] == 20_000
        assert (await _counts(c))["total"] == 0
