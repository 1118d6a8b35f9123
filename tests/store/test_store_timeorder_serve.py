"""Real processes (issue 12): a schedule across a restart of ``serve`` fires exactly once
per due time, and a 3-step pipeline submitted in one batch over HTTP completes in order."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from live_server import LiveServer

DEADLINE_S = 20.0


def _wait(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _run_keys(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        extras = [r[0] for r in conn.execute("SELECT extra FROM tasks WHERE extra IS NOT NULL")]
    finally:
        conn.close()
    keys = [msgspec.msgpack.decode(e)[2] for e in extras]
    return sorted(int(k.rsplit(":", 1)[1]) for k in keys if k and k.startswith("schedule:tick:"))


def test_a_schedule_fires_once_per_due_time_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    live = LiveServer(tmp_path, settings={"WORKERPOOL__STORE__PATH": f'"{db}"'})
    live.start()
    try:
        with httpx.Client(base_url=live.url, timeout=5) as c:
            made = c.post(
                "/api/v1/schedules", json={"name": "tick", "every": 1, "type": "default_task"}
            )
            assert made.status_code == 201, made.text
            _wait("two runs", lambda: len(_run_keys(db)) >= 2)
    finally:
        live.stop()
    before = _run_keys(db)
    stopped_at = time.time()
    time.sleep(2.5)  # down for at least two due times
    live.start()
    try:
        _wait("two runs after the restart", lambda: len(_run_keys(db)) >= len(before) + 2)
        with httpx.Client(base_url=live.url, timeout=5) as c:
            view = c.get("/api/v1/schedules/tick").json()
            assert view["source"] == "api"  # the API's schedule survived the restart
    finally:
        live.stop()
    runs = _run_keys(db)
    assert len(runs) == len(set(runs)), runs  # no due time twice
    after = [t for t in runs if t > before[-1]]
    missed = [t for t in after if t < stopped_at + 2.5]
    # The due times missed while down collapse into one catch-up run; no other gap.
    assert len([t for t in missed if t > stopped_at]) <= 1, (before, after, stopped_at)


def test_a_pipeline_in_one_batch_completes_in_order(tmp_path: Path) -> None:
    with LiveServer(tmp_path) as live, httpx.Client(base_url=live.url, timeout=5) as c:
        resp = c.post(
            "/api/v1/tasks/batch",
            json={
                "tasks": [
                    {"type": "default_task", "payload": {"step": 1, "sleep": 0.1}},
                    {"type": "default_task", "payload": {"step": 2}, "depends_on": ["$0"]},
                    {"type": "default_task", "payload": {"step": 3}, "depends_on": ["$1"]},
                ]
            },
        )
        assert resp.status_code == 201, resp.text
        ids = [t["id"] for t in resp.json()["tasks"]]

        def all_done() -> list[dict[str, Any]] | None:
            tasks = [c.get(f"/api/v1/tasks/{i}").json() for i in ids]
            return tasks if all(t["status"] == "completed" for t in tasks) else None

        done = _wait("the pipeline", all_done)
        assert done[0]["finished_at"] <= done[1]["started_at"]
        assert done[1]["finished_at"] <= done[2]["started_at"]
