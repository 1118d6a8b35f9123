"""PATCH /api/v1/types settings survive a restart of the SQLite store; the config is the
default for what was never changed (issue 13)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer
from store_helpers import make_engine, store_config

from workerpool_tui.config_types import TypeSettings
from workerpool_tui.core.errors import InvalidRequest

pytestmark = pytest.mark.anyio


def _limits(engine: object, name: str = "gated") -> tuple[int, str, bool]:
    limit = engine.gates.limits[name]  # type: ignore[attr-defined]
    return limit.concurrency, limit.rate_limit, limit.paused


async def test_patched_settings_survive_a_restart_over_the_config(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    types = {"gated": TypeSettings(concurrency=2)}
    engine, _ = make_engine(store_config(db, types=types), db)
    async with engine:
        assert _limits(engine) == (2, "", False)
        await engine.type_settings.patch("gated", concurrency=5, paused=True)
        await engine.type_settings.patch("gated", rate_limit="10/s")
        with pytest.raises(InvalidRequest):  # all or nothing: nothing written
            await engine.type_settings.patch("gated", concurrency=1, rate_limit="fast")
        assert _limits(engine) == (5, "10/s", True)
    side = json.loads((tmp_path / "tasks.db.types.json").read_text())
    assert side == {"gated": {"concurrency": 5, "rate_limit": "10/s", "paused": True}}

    # restart: the stored settings win over the config
    engine, _ = make_engine(store_config(db, types=types), db)
    async with engine:
        assert _limits(engine) == (5, "10/s", True)
        # back to the config's value: that override goes (a later config change applies)
        await engine.type_settings.patch("gated", concurrency=2, paused=False)
        assert _limits(engine) == (2, "10/s", False)
    side = json.loads((tmp_path / "tasks.db.types.json").read_text())
    assert side == {"gated": {"rate_limit": "10/s"}}

    # the config changed meanwhile: what was never overridden follows it
    engine, _ = make_engine(store_config(db, types={"gated": TypeSettings(concurrency=3)}), db)
    async with engine:
        assert _limits(engine) == (3, "10/s", False)
        await engine.type_settings.patch("gated", rate_limit="")
    assert json.loads((tmp_path / "tasks.db.types.json").read_text()) == {}
    engine, _ = make_engine(store_config(db, types={"gated": TypeSettings(concurrency=3)}), db)
    async with engine:
        assert _limits(engine) == (3, "", False)


async def test_a_type_without_a_config_table_keeps_its_setting_too(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        await engine.type_settings.patch("default_task", paused=True)
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        assert _limits(engine, "default_task") == (0, "", True)


def test_a_type_paused_over_http_stays_paused_after_serve_restarts(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    live = LiveServer(tmp_path, settings={"WORKERPOOL__STORE__PATH": f'"{db}"'})
    live.start()
    try:
        with httpx.Client(base_url=live.url, timeout=5) as c:
            r = c.patch("/api/v1/types/default_task", json={"paused": True, "concurrency": 2})
            assert r.status_code == 200 and r.json()["paused"] is True, r.text
    finally:
        live.stop()
    live.start()
    try:
        with httpx.Client(base_url=live.url, timeout=5) as c:
            types = {t["name"]: t for t in c.get("/api/v1/types").json()["types"]}
            assert (types["default_task"]["paused"], types["default_task"]["concurrency"]) == (
                True,
                2,
            )
            task = c.post("/api/v1/tasks", json={"type": "default_task"}).json()

            def held() -> int:
                found = c.get("/api/v1/types").json()["types"]
                return int(next(t["held"] for t in found if t["name"] == "default_task"))

            deadline = time.monotonic() + 20
            while held() != 1:  # the paused gate holds it back
                assert time.monotonic() < deadline, "the task was not held by the paused type"
                time.sleep(0.05)
            assert c.get(f"/api/v1/tasks/{task['id']}").json()["status"] == "pending"
            r = c.patch("/api/v1/types/default_task", json={"paused": False})
            assert r.status_code == 200
            deadline = time.monotonic() + 20
            while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] != "completed":
                assert time.monotonic() < deadline, "the resumed type's task never ran"
                time.sleep(0.05)
    finally:
        live.stop()
