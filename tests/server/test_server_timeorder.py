"""Delayed tasks, dependencies and unique keys over HTTP (issue 12): a real loopback
server and httpx."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from server_helpers import running_server

from workerpool_tui.config import load_config

pytestmark = pytest.mark.anyio


def client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)


async def wait_status(c: httpx.AsyncClient, task_id: str, status: str) -> dict[str, Any]:
    with anyio.fail_after(5):
        while True:
            task = (await c.get(f"/api/v1/tasks/{task_id}")).json()
            if task["status"] == status:
                return task
            await anyio.sleep(0.01)


async def test_delay_run_now_waiting_filter_and_stats() -> None:
    async with running_server() as server, client(server.port) as c:
        resp = await c.post("/api/v1/tasks", json={"type": "default_task", "delay": "1h"})
        assert resp.status_code == 201, resp.text
        task = resp.json()
        assert task["status"] == "pending" and task["run_at"] is not None
        stats = (await c.get("/api/v1/tasks/status/stats")).json()["tasks"]
        assert (stats["scheduled"], stats["pending"], stats["blocked"]) == (1, 0, 0)
        listed = (await c.get("/api/v1/tasks?waiting=time")).json()
        assert [t["id"] for t in listed["tasks"]] == [task["id"]]
        assert (await c.get("/api/v1/tasks?waiting=none")).json()["total"] == 0
        bad = await c.get("/api/v1/tasks?waiting=soon")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
        ran = await c.post(f"/api/v1/tasks/{task['id']}/run")
        assert ran.status_code == 200 and ran.json()["run_at"] is None
        await wait_status(c, task["id"], "completed")
        again = await c.post(f"/api/v1/tasks/{task['id']}/run")
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"


async def test_run_at_in_the_past_runs_now_and_bad_times_are_refused() -> None:
    async with running_server() as server, client(server.port) as c:
        resp = await c.post(
            "/api/v1/tasks", json={"type": "default_task", "run_at": "2001-01-01T00:00:00Z"}
        )
        assert resp.status_code == 201 and resp.json()["run_at"] is None
        await wait_status(c, resp.json()["id"], "completed")
        for body in (
            {"type": "default_task", "run_at": "2030-01-01T00:00:00"},  # no zone
            {"type": "default_task", "run_at": "tomorrow"},
            {"type": "default_task", "delay": "soon"},
            {"type": "default_task", "delay": "1s", "run_at": "2030-01-01T00:00:00Z"},
            {"type": "default_task", "unique_for": "1m"},
            {"type": "default_task", "on_duplicate": "ignore"},
        ):
            resp = await c.post("/api/v1/tasks", json=body)
            assert resp.status_code == 400, body
            assert resp.json()["error"]["code"] == "invalid_request"
        assert (await c.get("/api/v1/tasks/status/stats")).json()["tasks"]["total"] == 1


async def test_pipeline_in_one_batch_completes_in_order() -> None:
    async with running_server() as server, client(server.port) as c:
        resp = await c.post(
            "/api/v1/tasks/batch",
            json={
                "tasks": [
                    {"type": "default_task", "payload": {"step": 0, "sleep": 0.05}},
                    {"type": "default_task", "payload": {"step": 1}, "depends_on": ["$0"]},
                    {"type": "default_task", "payload": {"step": 2}, "depends_on": ["$1"]},
                ]
            },
        )
        assert resp.status_code == 201, resp.text
        ids = [t["id"] for t in resp.json()["tasks"]]
        assert resp.json()["tasks"][2]["depends_on"] == [ids[1]]
        done = [await wait_status(c, i, "completed") for i in ids]
        assert done[0]["finished_at"] <= done[1]["started_at"]
        assert done[1]["finished_at"] <= done[2]["started_at"]
        missing = await c.post(
            "/api/v1/tasks", json={"type": "default_task", "depends_on": ["0000000000000000"]}
        )
        assert missing.status_code == 400 and "no task with id" in missing.text


async def test_parent_filter_lists_a_tasks_children_whatever_their_status() -> None:
    async with running_server() as server, client(server.port) as c:
        resp = await c.post(
            "/api/v1/tasks/batch",
            json={
                "tasks": [
                    {"type": "default_task"},
                    {"type": "default_task", "depends_on": ["$0"]},
                    {"type": "default_task", "depends_on": ["$0"], "delay": "1h"},
                    {"type": "default_task", "depends_on": ["$1"]},
                ]
            },
        )
        assert resp.status_code == 201, resp.text
        ids = [t["id"] for t in resp.json()["tasks"]]
        await wait_status(c, ids[1], "completed")
        listed = (await c.get(f"/api/v1/tasks?parent={ids[0]}")).json()
        assert listed["total"] == 2
        assert [(t["id"], t["status"]) for t in listed["tasks"]] == [
            (ids[2], "pending"),
            (ids[1], "completed"),
        ]  # newest first, final ones included; not the grandchild
        scoped = (await c.get(f"/api/v1/tasks?parent={ids[0]}&status=completed")).json()
        assert [t["id"] for t in scoped["tasks"]] == [ids[1]]
        assert (await c.get("/api/v1/tasks?parent=nosuchtask")).json()["total"] == 0


async def test_failed_parent_cancels_children_with_dependency_failed() -> None:
    async with running_server() as server, client(server.port) as c:
        resp = await c.post(
            "/api/v1/tasks/batch",
            json={
                "tasks": [
                    {"type": "default_task", "payload": {"fail": True}},
                    {"type": "default_task", "depends_on": ["$0"]},
                ]
            },
        )
        parent, child = resp.json()["tasks"]
        done = await wait_status(c, child["id"], "cancelled")
        assert done["error"]["type"] == "dependency_failed"
        assert parent["id"] in done["error"]["message"]


async def test_unique_key_duplicate_and_return() -> None:
    async with running_server() as server, client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        body = {"type": "default_task", "unique_key": "nightly"}
        first = await c.post("/api/v1/tasks", json=body)
        assert first.status_code == 201
        dup = await c.post("/api/v1/tasks", json=body)
        assert dup.status_code == 409
        assert dup.json()["error"]["code"] == "duplicate"
        assert dup.json()["error"]["existing_id"] == first.json()["id"]
        same = await c.post("/api/v1/tasks", json={**body, "on_duplicate": "return"})
        assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
        batch = await c.post("/api/v1/tasks/batch", json={"tasks": [body, body]})
        assert batch.status_code == 409
        assert (await c.get("/api/v1/tasks/status/stats")).json()["tasks"]["total"] == 1


async def test_schedules_crud_run_and_read_only_config_ones() -> None:
    cfg = load_config(
        None,
        environ={},
        overrides={
            "server": {"port": 0, "host": "127.0.0.1"},
            "store": {"path": ""},
            "schedule": [{"name": "from-file", "type": "default_task", "every": "1h"}],
        },
    )
    async with running_server(cfg) as server, client(server.port) as c:
        body = {"name": "tick", "every": "5m", "type": "default_task", "payload": {"n": 1}}
        made = await c.post("/api/v1/schedules", json=body)
        assert made.status_code == 201, made.text
        view = made.json()
        assert view["source"] == "api" and view["next_run"] is not None
        assert view["last_run"] is None and view["last_status"] is None
        again = await c.post("/api/v1/schedules", json=body)
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_exists"
        bad = await c.post("/api/v1/schedules", json={**body, "name": "b", "cron": "* * *"})
        assert bad.status_code == 400
        names = [s["name"] for s in (await c.get("/api/v1/schedules")).json()["schedules"]]
        assert names == ["from-file", "tick"]
        paused = await c.patch("/api/v1/schedules/tick", json={"paused": True})
        assert paused.json()["paused"] is True and paused.json()["next_run"] is None
        ran = (await c.post("/api/v1/schedules/tick/run")).json()
        assert ran["task_id"] and ran["schedule"]["last_task_id"] == ran["task_id"]
        await wait_status(c, ran["task_id"], "completed")
        view = (await c.get("/api/v1/schedules/tick")).json()
        assert view["last_status"] == "completed"
        ro = await c.patch("/api/v1/schedules/from-file", json={"paused": True})
        assert ro.status_code == 409 and ro.json()["error"]["code"] == "read_only"
        assert "configuration file" in ro.json()["error"]["message"]
        ro = await c.delete("/api/v1/schedules/from-file")
        assert ro.status_code == 409
        assert (await c.delete("/api/v1/schedules/tick")).status_code == 200
        assert (await c.get("/api/v1/schedules/tick")).status_code == 404
