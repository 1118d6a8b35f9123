"""A real ``serve`` with an SQLite store against what once killed it silently (issue #15
§1, §2): out-of-range integers are refused at admission and the server goes on; what was
accepted comes back exactly as sent after a restart; and a store that fails for good
ends the process with one line and a non-zero status instead of leaving it idle."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from test_store_serve_crash import _config, _drain_output, _start

pytestmark = pytest.mark.anyio

OUT_OF_RANGE = [
    {"type": "default_task", "priority": 18446744073709551616},
    {"type": "default_task", "priority": -9223372036854775809},
    {"type": "default_task", "max_retries": 18446744073709551616},
    {"type": "default_task", "payload": {"x": 18446744073709551616, "sleep": 600}},
]
EDGE_PAYLOAD = {"big": 2**63 - 1, "small": -(2**63), "f": 1.5e308, "s": "é\u2028"}


async def test_out_of_range_integers_are_refused_and_what_was_accepted_survives(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tasks.db"
    config = _config(tmp_path, db, workers=2)
    proc, url = await _start(config)
    async with proc, anyio.create_task_group() as tg:
        tg.start_soon(_drain_output, proc)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for body in OUT_OF_RANGE:
                r = await client.post("/api/v1/tasks", json=body)
                assert r.status_code == 400, r.text
                assert r.json()["error"]["code"] == "invalid_request"
            ok = await client.post(
                "/api/v1/tasks",
                json={"type": "default_task", "payload": EDGE_PAYLOAD, "priority": 2**31 - 1},
            )
            assert ok.status_code == 201, ok.text
            task_id = ok.json()["id"]
            assert (await client.get("/health")).status_code == 200
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            await proc.wait()
        tg.cancel_scope.cancel()
    assert proc.returncode == 0

    proc, url = await _start(config)
    async with proc, anyio.create_task_group() as tg:
        tg.start_soon(_drain_output, proc)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            back = (await client.get(f"/api/v1/tasks/{task_id}")).json()
            assert back["payload"] == EDGE_PAYLOAD
            assert back["priority"] == 2**31 - 1
            assert back["result"]["payload"] == EDGE_PAYLOAD
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            await proc.wait()
        tg.cancel_scope.cancel()
    assert proc.returncode == 0


FAULTY_SERVE = """
import sys
from workerpool_tui.store import sqlite as store

real = store.encode_batch
calls = 0


def failing(*args, **kwargs):
    global calls
    calls += 1
    if calls > 1:
        raise RuntimeError("injected encoder failure")
    return real(*args, **kwargs)


store.encode_batch = failing
from workerpool_tui.cli import main

sys.exit(main(sys.argv[1:]))
"""


async def test_a_store_that_fails_for_good_ends_serve_with_one_line_and_status_1(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tasks.db"
    config = _config(tmp_path, db, workers=2)
    script = tmp_path / "faulty_serve.py"
    script.write_text(FAULTY_SERVE)
    proc = await anyio.open_process(
        [sys.executable, str(script), "serve", "--config", str(config)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    async with proc:
        assert proc.stdout is not None and proc.stderr is not None
        seen = b""
        with anyio.fail_after(20):
            async for chunk in proc.stdout:
                seen += chunk
                if b"API listening on" in seen:
                    break
        url = seen.split(b"API listening on ")[1].split()[0].decode()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain_output, proc)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                first = await client.post("/api/v1/tasks", json={"type": "default_task"})
                assert first.status_code == 201, first.text
                second = await client.post("/api/v1/tasks", json={"type": "default_task"})
                # Never a 500, never a hang: refused, with when to try again.
                assert second.status_code == 503, second.text
                assert second.json()["error"]["code"] in ("store_unavailable", "shutting_down")
            with anyio.fail_after(30):
                await proc.wait()
            tg.cancel_scope.cancel()
        errors = (await proc.stderr.receive()).decode()
    assert proc.returncode == 1
    lines = [line for line in errors.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, errors
    assert "its flusher failed (RuntimeError: injected encoder failure)" in lines[0]
    assert lines[0].endswith("; stopped")
