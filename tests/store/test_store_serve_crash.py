"""The issue's own test: ``kill -9`` of a real ``workerpool-tui serve`` in the middle of a
stream of HTTP submissions, then a restart: every task that got a 201 is there once."""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import Process
from store_helpers import db_rows, wait_no_writer

pytestmark = pytest.mark.anyio
_LISTENING = re.compile(rb"API listening on (http://127\.0\.0\.1:\d+)")


def _config(tmp_path: Path, db: Path, workers: int) -> Path:
    config = tmp_path / f"config-{workers}.toml"
    config.write_text(
        f"""
[server]
port = 0
[worker]
min_workers = {workers}
max_workers = {workers}
enable_auto_scaling = false
shutdown_timeout = "1s"
[task]
queue_capacity = 1000
[store]
path = "{db}"
[logger]
level = "info"
output = "stdout"
"""
    )
    return config


async def _start(config: Path) -> tuple[Process, str]:
    """Start ``serve`` and read its log until it says where it listens."""
    proc = await anyio.open_process(
        [sys.executable, "-m", "workerpool_tui", "serve", "--config", str(config)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=None,
    )
    assert proc.stdout is not None
    seen = b""
    try:
        with anyio.fail_after(20):
            async for chunk in proc.stdout:
                seen += chunk
                match = _LISTENING.search(seen)
                if match:
                    return proc, match.group(1).decode()
    except BaseException:
        proc.kill()
        await proc.aclose()
        raise
    raise AssertionError(f"serve exited before listening: {seen.decode(errors='replace')}")


async def _drain_output(proc: Process) -> None:
    """Keep reading the server's log so a full pipe never blocks it."""
    assert proc.stdout is not None
    async for _ in proc.stdout:
        pass


async def test_kill9_of_serve_loses_no_201(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    # Two slow workers while submitting, so that work is pending and running at the kill
    # however loaded the machine; sixteen after the restart to finish it quickly.
    config = _config(tmp_path, db, workers=2)
    acked: set[str] = set()
    enough = anyio.Event()
    counter = itertools.count()

    proc, url = await _start(config)
    async with proc, anyio.create_task_group() as tg:
        tg.start_soon(_drain_output, proc)

        async def submitter() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                while True:
                    body = {"type": "default_task", "payload": {"n": next(counter), "sleep": 0.05}}
                    try:
                        r = await client.post("/api/v1/tasks", json=body)
                    except httpx.TransportError:
                        return  # the server is gone: in flight, not acknowledged
                    if r.status_code == 201:
                        acked.add(r.json()["id"])
                        if len(acked) >= 300:
                            enough.set()
                    else:
                        assert r.status_code == 429, r.text
                        await anyio.sleep(0.01)

        for _ in range(8):
            tg.start_soon(submitter)
        with anyio.fail_after(30):
            await enough.wait()
        proc.send_signal(signal.SIGKILL)  # mid-stream: the submitters are still posting
        with anyio.fail_after(10):
            await proc.wait()
        await wait_no_writer(db)  # its writer process died with it
    assert proc.returncode == -signal.SIGKILL

    rows = db_rows(db)  # PRAGMA integrity_check first
    assert acked <= rows.keys(), f"lost {len(acked - rows.keys())} task(s) that got a 201"
    assert max(Counter(r["payload"]["n"] for r in rows.values()).values()) == 1
    assert any(r["status"] in ("pending", "running") for r in rows.values())

    proc, url = await _start(_config(tmp_path, db, workers=16))
    async with proc, anyio.create_task_group() as tg:
        tg.start_soon(_drain_output, proc)
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            seen: list[str] = []
            offset = 0
            while True:
                page = (
                    await client.get("/api/v1/tasks", params={"limit": 1000, "offset": offset})
                ).json()
                seen += [t["id"] for t in page["tasks"]]
                offset += 1000
                if offset >= page["total"]:
                    break
            assert len(seen) == len(set(seen)) == len(rows)
            assert acked <= set(seen)
            with anyio.fail_after(30):
                while True:
                    stats = (await client.get("/api/v1/tasks/status/stats")).json()["tasks"]
                    if stats["pending"] == stats["running"] == 0:
                        break
                    await anyio.sleep(0.05)
            assert stats["completed"] == len(rows)
            one = (await client.get(f"/api/v1/tasks/{min(acked)}")).json()
            assert one["status"] == "completed" and one["result"]["payload"]["sleep"] == 0.05
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            await proc.wait()
        tg.cancel_scope.cancel()
    assert proc.returncode == 0
    after = db_rows(db)
    assert after.keys() == rows.keys()
    assert {r["status"] for r in after.values()} == {"completed"}
