"""``GET /api/v1/types`` and ``PATCH /api/v1/types/{name}`` (issue #13): per-type settings,
gates and run-time changes, through a real httpx client on loopback."""

from __future__ import annotations

import os

import anyio
import httpx
import pytest
from server_helpers import make_config, running_server
from test_server_http_api import assert_error, client, wait_status

pytestmark = pytest.mark.anyio

_FIELDS = {
    "name",
    "description",
    "payload_schema",
    "isolation",
    "concurrency",
    "rate_limit",
    "timeout",
    "max_retries",
    "priority",
    "paused",
    "running",
    "held",
    "rate_limited",
}


async def _type(c: httpx.AsyncClient, name: str) -> dict[str, object]:
    types = (await c.get("/api/v1/types")).json()["types"]
    return next(t for t in types if t["name"] == name)


async def test_types_show_their_settings_and_a_patch_pauses_and_resumes_one() -> None:
    cfg = make_config(
        task={
            "types": {
                "default_task": {"concurrency": 2, "rate_limit": "100/s", "timeout": "1m"},
                "example_task": {"paused": True, "priority": 4},
            }
        }
    )
    async with running_server(cfg) as server, client(server.port) as c:
        types = (await c.get("/api/v1/types")).json()["types"]
        assert all(set(t) == _FIELDS for t in types)
        default = await _type(c, "default_task")
        assert (default["concurrency"], default["rate_limit"], default["timeout"]) == (
            2,
            "100/s",
            60.0,
        )
        example = await _type(c, "example_task")
        assert (example["paused"], example["priority"]) == (True, 4)

        task = (await c.post("/api/v1/tasks", json={"type": "example_task"})).json()
        assert task["priority"] == 4  # the type's default
        with anyio.fail_after(5):
            while True:  # polled over HTTP, as a client would
                if (await _type(c, "example_task"))["held"] == 1:
                    break
                await anyio.sleep(0.02)
        assert (await c.get(f"/api/v1/tasks/{task['id']}")).json()["status"] == "pending"

        resumed = await c.patch("/api/v1/types/example_task", json={"paused": False})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["paused"] is False
        await wait_status(c, task["id"], "completed")


async def test_a_type_patch_is_checked_whole_and_refused_without_change() -> None:
    async with running_server() as server, client(server.port) as c:
        url = "/api/v1/types/default_task"
        ok = await c.patch(url, json={"concurrency": 3, "rate_limit": "5/m"})
        assert ok.status_code == 200, ok.text
        assert (ok.json()["concurrency"], ok.json()["rate_limit"]) == (3, "5/m")
        for body in (
            {"concurrency": -1},
            {"concurrency": "2"},
            {"rate_limit": "often"},
            {"concurrency": 1, "rate_limit": "0/s"},
            {"timeout": 5},
        ):
            assert_error(await c.patch(url, json=body), 400, "invalid_request")
        assert_error(await c.patch(url, content=b"{"), 415, "unsupported_media_type")
        assert_error(
            await c.patch(url, content=b"{", headers={"content-type": "application/json"}),
            400,
            "invalid_json",
        )
        after = await _type(c, "default_task")
        assert (after["concurrency"], after["rate_limit"]) == (3, "5/m")  # nothing changed
        assert_error(await c.patch("/api/v1/types/nope", json={"paused": True}), 404, "not_found")
        cleared = await c.patch(url, json={"concurrency": 0, "rate_limit": ""})
        assert (cleared.json()["concurrency"], cleared.json()["rate_limit"]) == (0, "")


async def test_worker_processes_are_listed_with_the_workers() -> None:
    cfg = make_config(
        worker={"processes": 1}, task={"types": {"default_task": {"isolation": "process"}}}
    )
    async with running_server(cfg) as server, client(server.port) as c:
        task = (await c.post("/api/v1/tasks", json={"type": "default_task"})).json()
        done = await wait_status(c, task["id"], "completed")
        assert done["result"]["size"] >= 0
        body = (await c.get("/api/v1/workers")).json()
        (proc,) = body["processes"]
        assert set(proc) == {
            "slot",
            "pid",
            "task_id",
            "cpu_pct",
            "rss_bytes",
            "tasks_done",
            "restarts",
        }
        assert proc["pid"] > 0 and proc["pid"] != os.getpid()
        assert (proc["tasks_done"], proc["restarts"], proc["task_id"]) == (1, 0, None)
        assert proc["rss_bytes"] > 1 << 20
        assert (await _type(c, "default_task"))["isolation"] == "process"
    async with running_server() as server, client(server.port) as c:
        assert (await c.get("/api/v1/workers")).json()["processes"] == []
