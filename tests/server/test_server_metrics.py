"""``GET /metrics``: parsed with ``prometheus_client.parser``; the values move with real
work on a real server; the token guards it unless ``metrics.public``."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import make_config, running_server

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def _client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


async def scrape(c: httpx.AsyncClient) -> dict[Any, float]:
    resp = await c.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(resp.text)


async def test_metrics_move_with_real_work() -> None:
    async with running_server() as server, _client(server.port) as c:
        before = await scrape(c)
        assert value(before, "workerpool_workers_min") == 2
        assert value(before, "workerpool_workers_max") == 4
        assert value(before, "workerpool_tasks", status="completed") == 0
        assert value(before, "workerpool_queue_capacity") == 1000
        specs = [{"type": "default_task", "payload": {"i": i}} for i in range(5)]
        specs.append({"type": "default_task", "payload": {"fail": True}})
        resp = await c.post("/api/v1/tasks/batch", json={"tasks": specs})
        assert resp.status_code == 201
        with anyio.fail_after(10):
            while True:
                after = await scrape(c)
                done = value(after, "workerpool_tasks", status="completed")
                if done == 5 and value(after, "workerpool_tasks", status="failed") == 1:
                    break
                await anyio.sleep(0.02)
        assert value(after, "workerpool_tasks_submitted_total", type="default_task") == 6
        assert (
            value(
                after,
                "workerpool_tasks_finished_total",
                type="default_task",
                status="completed",
            )
            == 5
        )
        assert (
            value(after, "workerpool_tasks_finished_total", type="default_task", status="failed")
            == 1
        )
        assert value(after, "workerpool_task_run_seconds_count", type="default_task") == 6
        assert value(after, "workerpool_task_wait_seconds_count", type="default_task") == 6
        assert (
            value(after, "workerpool_task_run_seconds_bucket", type="default_task", le="+Inf") == 6
        )
        assert value(after, "workerpool_bus_published_total") > value(
            before, "workerpool_bus_published_total"
        )
        assert value(after, "workerpool_websocket_clients") == 0
        assert value(after, "workerpool_loop_lag_seconds") >= 0


async def test_metrics_count_retries_and_cancels() -> None:
    cfg = make_config(task={"retry_backoff": "10ms"})
    async with running_server(cfg) as server, _client(server.port) as c:
        spec = {"type": "default_task", "payload": {"fail": True}, "max_retries": 2}
        task = (await c.post("/api/v1/tasks", json=spec)).json()
        with anyio.fail_after(10):
            while True:
                current = (await c.get(f"/api/v1/tasks/{task['id']}")).json()
                if current["status"] == "failed":
                    break
                await anyio.sleep(0.02)
        found = await scrape(c)
        assert value(found, "workerpool_task_retries_total", type="default_task") == 2
        assert value(found, "workerpool_task_run_seconds_count", type="default_task") == 3
        assert value(found, "workerpool_task_wait_seconds_count", type="default_task") == 1


@pytest.mark.parametrize("public", [False, True])
async def test_metrics_need_the_token_unless_public(public: bool) -> None:
    cfg = make_config(server={"auth_token": "tok-123"}, metrics={"public": public})
    async with running_server(cfg) as server, _client(server.port) as c:
        bare = await c.get("/metrics")
        if public:
            assert bare.status_code == 200
        else:
            assert bare.status_code == 401
            assert bare.json()["error"]["code"] == "unauthorized"
        signed = await c.get("/metrics", headers={"authorization": "Bearer tok-123"})
        assert signed.status_code == 200 and "workerpool_workers_current" in signed.text
        doc = (await c.get("/openapi.json")).json()
        op = doc["paths"]["/metrics"]["get"]
        assert ("401" in op["responses"]) is not public
