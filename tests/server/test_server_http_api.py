"""Every endpoint of SPEC §8 and its error codes, through a real httpx client on loopback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from openapi_spec_validator import validate
from server_helpers import make_config, read_response, running_server

from workerpool_tui.server.routes import ROUTES

pytestmark = pytest.mark.anyio


def client(port: int, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


async def wait_status(c: httpx.AsyncClient, task_id: str, status: str) -> dict[str, Any]:
    with anyio.fail_after(5):
        while True:
            task = (await c.get(f"/api/v1/tasks/{task_id}")).json()
            if task["status"] == status:
                return task
            await anyio.sleep(0.02)


async def test_health_and_task_lifecycle() -> None:
    async with running_server() as server, client(server.port) as c:
        health = await c.get("/health")
        assert health.status_code == 200
        assert health.headers["content-type"] == "application/json; charset=utf-8"
        body = health.json()
        assert body["status"] == "ok" and body["version"] and body["uptime_s"] >= 0

        resp = await c.post(
            "/api/v1/tasks",
            json={"type": "default_task", "payload": {"x": 1}, "priority": 3, "timeout": "30s"},
        )
        assert resp.status_code == 201
        task = resp.json()
        assert resp.headers["location"] == f"/api/v1/tasks/{task['id']}"
        assert task["priority"] == 3 and task["timeout_s"] == 30.0
        done = await wait_status(c, task["id"], "completed")
        assert done["result"]["payload"] == {"x": 1}

        retry = await c.post(f"/api/v1/tasks/{task['id']}/retry")
        assert retry.status_code == 201
        assert retry.json()["retry_of"] == task["id"]
        assert retry.headers["location"] == f"/api/v1/tasks/{retry.json()['id']}"

        assert_error(await c.get("/api/v1/tasks/nope"), 404, "not_found")
        assert_error(await c.post("/api/v1/tasks/nope/retry"), 404, "not_found")
        assert_error(await c.delete("/api/v1/tasks/nope"), 404, "not_found")


async def test_ids_resolve_by_unique_prefix_and_an_ambiguous_one_lists_candidates() -> None:
    ids = iter(["abcd0001aaaaaaaa", "abcd0002bbbbbbbb", "ffff0003cccccccc"])
    async with (
        running_server(id_factory=lambda: next(ids)) as server,
        client(server.port) as c,
    ):
        server.engine.pause()
        for _ in range(3):
            assert (await c.post("/api/v1/tasks", json={"type": "default_task"})).status_code == 201
        assert (await c.get("/api/v1/tasks/ffff")).json()["id"] == "ffff0003cccccccc"
        assert (await c.get("/api/v1/tasks/abcd0002")).json()["id"] == "abcd0002bbbbbbbb"
        body = assert_error(await c.get("/api/v1/tasks/abcd"), 409, "ambiguous_id")
        assert body["error"]["candidates"] == ["abcd0001aaaaaaaa", "abcd0002bbbbbbbb"]
        assert_error(await c.delete("/api/v1/tasks/abcd"), 409, "ambiguous_id")
        assert_error(await c.post("/api/v1/tasks/abcd/retry"), 409, "ambiguous_id")
        # Shorter than four characters: never a prefix lookup.
        assert_error(await c.get("/api/v1/tasks/fff"), 404, "not_found")
        cancelled = await c.delete("/api/v1/tasks/abcd0001")
        assert cancelled.json()["id"] == "abcd0001aaaaaaaa"
        assert cancelled.json()["status"] == "cancelled"


async def test_listing_q_matches_id_prefix_type_or_message_on_the_server() -> None:
    ids = iter(["1234aaaa00000000", "5678bbbb00000000", "9999cccc00000000"])
    async with (
        running_server(id_factory=lambda: next(ids)) as server,
        client(server.port) as c,
    ):
        server.engine.pause()
        await c.post("/api/v1/tasks", json={"type": "default_task"})
        await c.post("/api/v1/tasks", json={"type": "example_task"})
        third = (await c.post("/api/v1/tasks", json={"type": "default_task"})).json()
        await c.delete(f"/api/v1/tasks/{third['id']}")  # message: "cancelled by request"

        async def listed(query: str) -> tuple[list[str], int]:
            body = (await c.get(f"/api/v1/tasks?{query}")).json()
            return [t["id"] for t in body["tasks"]], body["total"]

        assert await listed("q=5678") == (["5678bbbb00000000"], 1)
        assert await listed("q=EXAMPLE") == (["5678bbbb00000000"], 1)
        assert await listed("q=by+request") == (["9999cccc00000000"], 1)
        assert await listed("q=default") == (["9999cccc00000000", "1234aaaa00000000"], 2)
        assert await listed("q=default&status=pending") == (["1234aaaa00000000"], 1)
        assert await listed("q=default&limit=1&offset=1") == (["1234aaaa00000000"], 2)
        assert await listed("q=bbbb") == ([], 0)  # ids match by prefix only
        assert (await listed("q="))[1] == 3  # blank: no filter


async def test_cancel_running_then_409() -> None:
    async with running_server() as server, client(server.port) as c:
        resp = await c.post(
            "/api/v1/tasks", json={"type": "long_running_task", "payload": {"duration": 30}}
        )
        task_id = resp.json()["id"]
        await wait_status(c, task_id, "running")
        cancelled = await c.delete(f"/api/v1/tasks/{task_id}")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert_error(await c.delete(f"/api/v1/tasks/{task_id}"), 409, "already_finished")


async def test_list_filters_and_limits() -> None:
    async with running_server() as server, client(server.port) as c:
        await c.patch("/api/v1/pool", json={"paused": True})
        ids = []
        for i in range(5):
            r = await c.post("/api/v1/tasks", json={"type": "default_task", "payload": {"i": i}})
            ids.append(r.json()["id"])
        await c.post("/api/v1/tasks", json={"type": "example_task"})
        listing = (await c.get("/api/v1/tasks", params={"type": "default_task"})).json()
        assert listing["total"] == 5
        assert [t["id"] for t in listing["tasks"]] == ids[::-1]  # newest first
        page = (await c.get("/api/v1/tasks", params={"limit": 2, "offset": 1})).json()
        assert page["total"] == 6 and len(page["tasks"]) == 2
        pending = (await c.get("/api/v1/tasks", params={"status": "pending,running"})).json()
        assert pending["total"] == 6
        done = (await c.get("/api/v1/tasks", params={"status": "completed"})).json()
        assert done == {"tasks": [], "total": 0}
        for params in ({"limit": 1001}, {"offset": -1}, {"status": "bogus"}, {"limit": "x"}):
            assert_error(await c.get("/api/v1/tasks", params=params), 400, "invalid_request")


async def test_batch_is_all_or_nothing() -> None:
    async with running_server() as server, client(server.port) as c:
        ok = await c.post(
            "/api/v1/tasks/batch",
            json={"tasks": [{"type": "default_task"}, {"type": "example_task", "priority": 2}]},
        )
        assert ok.status_code == 201
        assert [t["type"] for t in ok.json()["tasks"]] == ["default_task", "example_task"]
        bad = await c.post(
            "/api/v1/tasks/batch", json={"tasks": [{"type": "default_task"}, {"type": "nope"}]}
        )
        assert_error(bad, 400, "unknown_task_type")
        bad = await c.post(
            "/api/v1/tasks/batch",
            json={"tasks": [{"type": "default_task"}, {"type": "default_task", "timeout": "x"}]},
        )
        assert_error(bad, 400, "invalid_request")
        assert "tasks[1].timeout" in bad.json()["error"]["message"]
        assert_error(
            await c.post("/api/v1/tasks/batch", json={"tasks": []}), 400, "invalid_request"
        )
        assert (await c.get("/api/v1/tasks")).json()["total"] == 2


async def test_submission_errors() -> None:
    cfg = make_config(task={"queue_capacity": 2}, worker={"min_workers": 1, "max_workers": 1})
    async with running_server(cfg) as server, client(server.port) as c:
        url = "/api/v1/tasks"
        assert_error(
            await c.post(url, content=b'{"type": "default_task"}'), 415, "unsupported_media_type"
        )
        assert_error(
            await c.post(url, content=b"{nope", headers={"content-type": "application/json"}),
            400,
            "invalid_json",
        )
        for body in (
            {"type": "default_task", "extra": 1},
            {"type": "default_task", "priority": "high"},
            {"type": "default_task", "timeout": "soon"},
            {"type": "default_task", "timeout": 0},
            {"type": "default_task", "payload": [1]},
            {"payload": {}},
            [1, 2],
        ):
            assert_error(await c.post(url, json=body), 400, "invalid_request")
        assert_error(await c.post(url, json={"type": "nope"}), 400, "unknown_task_type")
        shell = assert_error(
            await c.post(url, json={"type": "shell_task"}), 400, "unknown_task_type"
        )
        assert "task.allow_shell" in shell["error"]["message"]

        await c.patch("/api/v1/pool", json={"paused": True})
        for _ in range(2):
            assert (await c.post(url, json={"type": "default_task"})).status_code == 201
        full = await c.post(url, json={"type": "default_task"})
        assert_error(full, 429, "queue_full")
        assert int(full.headers["retry-after"]) >= 1
        assert (await c.get("/api/v1/tasks")).json()["total"] == 2


async def test_stats_types_pool() -> None:
    async with running_server() as server, client(server.port) as c:
        stats = (await c.get("/api/v1/tasks/status/stats")).json()
        assert set(stats["tasks"]) == {
            "total",
            "pending",
            "running",
            "completed",
            "failed",
            "cancelled",
            "scheduled",
            "blocked",
        }
        assert set(stats["queue"]) == {"depth", "capacity"}
        assert {"current", "busy", "idle", "min", "max", "paused"} <= set(stats["workers"])
        assert "throughput" in stats and "latency" in stats and "uptime_s" in stats

        types = (await c.get("/api/v1/types")).json()["types"]
        names = {t["name"] for t in types}
        assert {"default_task", "example_task", "long_running_task"} <= names
        assert all({"name", "description", "payload_schema"} < set(t) for t in types)

        pool = (await c.get("/api/v1/pool")).json()
        assert (pool["min_workers"], pool["max_workers"]) == (2, 4)
        patched = await c.patch(
            "/api/v1/pool", json={"min_workers": 1, "max_workers": 3, "paused": True}
        )
        assert patched.status_code == 200
        after = patched.json()
        assert (after["min_workers"], after["max_workers"], after["paused"]) == (1, 3, True)
        bad = await c.patch("/api/v1/pool", json={"min_workers": 5, "max_workers": 3})
        assert_error(bad, 409, "pool_conflict")
        assert_error(await c.patch("/api/v1/pool", json={"min_workers": 4}), 409, "pool_conflict")
        assert_error(await c.patch("/api/v1/pool", json={"workers": 3}), 400, "invalid_request")
        assert_error(await c.patch("/api/v1/pool", content=b"{}"), 415, "unsupported_media_type")
        assert (await c.get("/api/v1/pool")).json()["max_workers"] == 3  # refused: no change
        resumed = await c.patch("/api/v1/pool", json={"paused": False})
        assert resumed.json()["paused"] is False


async def test_pool_answer_can_be_sent_back_to_patch() -> None:
    async with running_server() as server, client(server.port) as c:
        pool = (await c.get("/api/v1/pool")).json()
        assert set(pool) == {
            "min_workers",
            "max_workers",
            "paused",
            "current",
            "busy",
            "idle",
            "auto_scaling",
        }
        same = await c.patch("/api/v1/pool", json=pool)
        assert same.status_code == 200, same.text
        assert {k: same.json()[k] for k in ("min_workers", "max_workers", "paused")} == {
            k: pool[k] for k in ("min_workers", "max_workers", "paused")
        }
        # Read-only fields are accepted and ignored (they describe, they do not command).
        edited = {**pool, "max_workers": 3, "current": 99, "busy": 42, "auto_scaling": False}
        changed = (await c.patch("/api/v1/pool", json=edited)).json()
        assert changed["max_workers"] == 3
        assert changed["current"] <= 3 and changed["auto_scaling"] is pool["auto_scaling"]
        # ...but they must still be what GET says they are.
        assert_error(
            await c.patch("/api/v1/pool", json={"current": "many"}), 400, "invalid_request"
        )
        # The stats object keeps the engine's names (the dashboard and the page read them).
        workers = (await c.get("/api/v1/tasks/status/stats")).json()["workers"]
        assert (workers["min"], workers["max"]) == (changed["min_workers"], 3)


async def test_unknown_path_and_method() -> None:
    async with running_server() as server, client(server.port) as c:
        assert_error(await c.get("/nope"), 404, "not_found")
        assert_error(await c.get("/api/v1/tasks/a/b/c"), 404, "not_found")
        resp = await c.put("/api/v1/tasks")
        assert_error(resp, 405, "method_not_allowed")
        assert resp.headers["allow"] == "GET, POST, HEAD"
        resp = await c.get("/api/v1/tasks/batch")
        assert_error(resp, 405, "method_not_allowed")
        assert resp.headers["allow"] == "POST"
        resp = await c.post("/health")
        assert resp.headers["allow"] == "GET, HEAD"
        head = await c.head("/health")
        assert head.status_code == 200 and head.content == b""


async def test_auth() -> None:
    cfg = make_config(server={"auth_token": "s3cret"})
    async with running_server(cfg) as server:
        async with client(server.port) as anon:
            assert (await anon.get("/health")).status_code == 200
            assert (await anon.get("/openapi.json")).status_code == 200
            resp = await anon.get("/api/v1/tasks")
            assert_error(resp, 401, "unauthorized")
            assert resp.headers["www-authenticate"] == "Bearer"
            assert_error(
                await anon.post("/api/v1/tasks", json={"type": "default_task"}), 401, "unauthorized"
            )
            assert_error(await anon.get("/api/v1/nothing"), 401, "unauthorized")
            # ?token= is for the WebSocket only
            assert_error(await anon.get("/api/v1/tasks?token=s3cret"), 401, "unauthorized")
        async with client(server.port, "wrong") as bad:
            assert_error(await bad.get("/api/v1/tasks"), 401, "unauthorized")
        async with client(server.port, "s3cret") as good:
            assert (await good.get("/api/v1/tasks")).status_code == 200
            assert (
                await good.post("/api/v1/tasks", json={"type": "default_task"})
            ).status_code == 201
        assert (await anon_count(server.port)) == 0


async def anon_count(port: int) -> int:
    async with client(port, "s3cret") as c:
        return int((await c.get("/api/v1/tasks", params={"status": "failed"})).json()["total"])


async def test_static_files(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>wp</title>")
    (web / "app.js").write_text("console.log(1)")
    (web / "style.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    async with running_server(web_root=web) as server, client(server.port) as c:
        index = await c.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        assert "<title>wp</title>" in index.text
        js = await c.get("/static/app.js")
        assert js.headers["content-type"].startswith("text/javascript")
        assert js.text == "console.log(1)"
        assert (await c.get("/static/style.css")).headers["content-type"].startswith("text/css")
        assert_error(await c.get("/static/missing.js"), 404, "not_found")
        assert_error(await c.get("/static/.hidden"), 404, "not_found")
        assert_error(await c.get("/static/..%2fsecret.txt"), 404, "not_found")
        # A raw request target that httpx would normalise away.
        async with await anyio.connect_tcp("127.0.0.1", server.port) as raw:
            await raw.send(b"GET /static/../secret.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            with anyio.fail_after(5):
                answer = await read_response(raw)
            assert (
                answer.startswith(b"HTTP/1.1 404")
                and b"TOPSECRET" not in answer.split(b"\r\n\r\n")[1]
            )


async def test_openapi_valid_and_complete() -> None:
    async with running_server() as server, client(server.port) as c:
        doc = (await c.get("/openapi.json")).json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    for route in ROUTES:
        assert route.method.lower() in doc["paths"][route.path], route
    assert {r.path for r in ROUTES} == set(doc["paths"])
    submit = doc["paths"]["/api/v1/tasks"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "SubmitRequest"
    )
    assert "429" in submit["responses"] and "201" in submit["responses"]
    assert "SubmitRequest" in doc["components"]["schemas"]
    assert "TaskView" in doc["components"]["schemas"]


async def test_shutting_down_answers_503_on_open_connections() -> None:
    async with running_server() as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as raw:
            await raw.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            with anyio.fail_after(5):
                assert (await read_response(raw)).startswith(b"HTTP/1.1 200")
            server.begin_shutdown()
            await raw.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            with anyio.fail_after(5):
                answer = await read_response(raw)
            assert answer.startswith(b"HTTP/1.1 503")
            assert b'"shutting_down"' in answer
            assert b"connection: close" in answer.lower()
        with pytest.raises(OSError):
            await anyio.connect_tcp("127.0.0.1", server.port)


async def test_access_log_lines_and_token_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="workerpool_tui.access")
    cfg = make_config(server={"auth_token": "s3cret"})
    async with running_server(cfg) as server, client(server.port) as c:
        await c.get("/health")
        await c.get("/api/v1/ws/tasks?token=s3cret")  # not an upgrade: 400, but logged
    lines = [r.getMessage() for r in caplog.records if r.name == "workerpool_tui.access"]
    assert any('"GET /health" 200' in line and line.endswith("ms") for line in lines), lines
    assert any("token=***" in line for line in lines), lines
    assert not any("s3cret" in line for line in lines)


async def test_handler_bug_is_a_logged_500_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_server() as server, client(server.port) as c:

        def broken() -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(server.engine, "stats", broken)
        assert_error(await c.get("/api/v1/tasks/status/stats"), 500, "internal_error")
        assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)
        assert (await c.get("/health")).status_code == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"type": "default_task", "priority": 2**64}, "priority"),
        ({"type": "default_task", "priority": -(2**63) - 1}, "priority"),
        ({"type": "default_task", "max_retries": 2**64}, "max_retries"),
        ({"type": "default_task", "max_retries": 101}, "max_retries"),
        ({"type": "default_task", "timeout": 1e308}, "timeout"),
        ({"type": "default_task", "payload": {"x": 2**64, "sleep": 600}}, "payload.x"),
    ],
)
async def test_out_of_range_values_are_refused_naming_the_field(
    body: dict[str, Any], words: str
) -> None:
    async with running_server() as server, client(server.port) as c:
        resp = await c.post("/api/v1/tasks", json=body)
        assert words in assert_error(resp, 400, "invalid_request")["error"]["message"]
        assert (await c.get("/api/v1/tasks")).json()["total"] == 0


@pytest.mark.parametrize("depth", [65, 977, 1900, 20_000])
async def test_deep_nesting_is_refused_and_every_later_listing_works(depth: int) -> None:
    async with running_server() as server, client(server.port) as c:
        deep = b'{"type":"default_task","payload":{"deep":' + b"[" * depth + b"]" * depth + b"}}"
        resp = await c.post(
            "/api/v1/tasks", content=deep, headers={"content-type": "application/json"}
        )
        assert "nested" in assert_error(resp, 400, "invalid_request")["error"]["message"]
        listing = await c.get("/api/v1/tasks")
        assert listing.status_code == 200 and listing.json()["total"] == 0
        # The deepest admitted payload goes through every path: run, hash, list, get.
        ok = b'{"type":"default_task","payload":{"deep":' + b"[" * 63 + b"]" * 63 + b"}}"
        resp = await c.post(
            "/api/v1/tasks", content=ok, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 201, resp.text
        done = await wait_status(c, resp.json()["id"], "completed")
        assert done["result"]["size"] > 0
        assert (await c.get("/api/v1/tasks")).status_code == 200


async def test_workers_lists_each_worker_with_its_task_and_counts() -> None:
    cfg = make_config(worker={"min_workers": 2, "max_workers": 2, "enable_auto_scaling": False})
    async with running_server(cfg) as server, client(server.port) as c:
        body = (await c.get("/api/v1/workers")).json()
        assert body["instance"] is None
        assert [w["id"] for w in body["workers"]] == [1, 2]
        assert {w["state"] for w in body["workers"]} == {"idle"}
        assert all(w["task_id"] is None and w["done"] == 0 for w in body["workers"])

        long = (
            await c.post(
                "/api/v1/tasks", json={"type": "long_running_task", "payload": {"duration": 30}}
            )
        ).json()
        await wait_status(c, long["id"], "running")
        body = (await c.get("/api/v1/workers")).json()
        (busy,) = [w for w in body["workers"] if w["state"] == "busy"]
        assert busy["task_id"] == long["id"] and busy["task_type"] == "long_running_task"
        assert busy["running_since"].endswith("Z") and busy["running_s"] >= 0

        ok = (await c.post("/api/v1/tasks", json={"type": "default_task"})).json()
        bad = (
            await c.post(
                "/api/v1/tasks",
                json={"type": "default_task", "payload": {"fail": True}, "max_retries": 0},
            )
        ).json()
        await wait_status(c, ok["id"], "completed")
        await wait_status(c, bad["id"], "failed")
        workers = (await c.get("/api/v1/workers")).json()["workers"]
        (idle,) = [w for w in workers if w["state"] == "idle"]
        assert (idle["done"], idle["failed"]) == (1, 1)
        assert (await c.delete(f"/api/v1/tasks/{long['id']}")).status_code == 200
