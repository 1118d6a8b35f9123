"""A full disk under a real ``serve`` (issue #15 §3): a submission whose commit fails is
answered 503 ``store_unavailable`` with ``Retry-After`` and leaves no trace (not listed,
not run, not stored); once space returns the store recovers by itself, and the WAL gives
back what it took.

The store lives on a small tmpfs mounted for the test (these machines run the tests as
root). Where mounting is impossible the test is skipped with the reason, never under CI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import Process
from store_helpers import db_rows
from test_store_serve_crash import _config, _drain_output, _start

pytestmark = pytest.mark.anyio

MARKER_HANDLER = """
from pathlib import Path


def marking(ctx, payload):
    \"\"\"Leaves a file named after the task, so a test can see which tasks ran.\"\"\"
    Path(payload["marks"], ctx.task_id).write_text("ran")
    return None
"""


@contextlib.asynccontextmanager
async def killed_on_failure(proc: Process) -> AsyncIterator[None]:
    """A failing test must not wait for ``serve`` to exit by itself."""
    try:
        yield
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        raise


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` (unbuffered writes, down to single blocks)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_refuses_submissions_without_a_trace_then_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "marking_tasks.py").write_text(MARKER_HANDLER)
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        db = disk / "tasks.db"
        config = _config(tmp_path, db, workers=2)
        config.write_text(
            config.read_text() + '[task.handlers]\nmarking = "marking_tasks:marking"\n'
        )
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the serve child imports the handler
        big = "x" * 20_000  # each submission makes the WAL grow

        def body(n: int) -> dict[str, object]:
            return {"type": "marking", "payload": {"marks": str(marks), "n": n, "pad": big}}

        acked: dict[str, int] = {}
        refused: list[int] = []
        proc, url = await _start(config)
        async with proc, anyio.create_task_group() as tg, killed_on_failure(proc):
            tg.start_soon(_drain_output, proc)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                for n in range(3):
                    r = await client.post("/api/v1/tasks", json=body(n))
                    assert r.status_code == 201, r.text
                    acked[r.json()["id"]] = n
                filler = fill(disk)
                for n in range(3, 40):
                    r = await client.post("/api/v1/tasks", json=body(n))
                    assert r.status_code in (201, 503), r.text  # never a 500
                    if r.status_code == 201:
                        acked[r.json()["id"]] = n  # the WAL still had room for it
                        continue
                    assert r.json()["error"]["code"] == "store_unavailable"
                    assert int(r.headers["retry-after"]) >= 1
                    refused.append(n)
                assert len(refused) >= 30, "the full disk refused almost nothing"
                listed = (await client.get("/api/v1/tasks", params={"limit": 1000})).json()
                assert {t["id"] for t in listed["tasks"]} == set(acked)
                stats = (await client.get("/api/v1/tasks/status/stats")).json()
                assert stats["tasks"]["total"] == len(acked)

                filler.unlink()  # space comes back: the store recovers by itself
                with anyio.fail_after(20):
                    while True:
                        r = await client.post("/api/v1/tasks", json=body(100))
                        if r.status_code == 201:
                            acked[r.json()["id"]] = 100
                            break
                        assert r.status_code == 503, r.text
                        await anyio.sleep(float(r.headers["retry-after"]) / 4)
                with anyio.fail_after(20):
                    while True:
                        stats = (await client.get("/api/v1/tasks/status/stats")).json()
                        if stats["tasks"]["completed"] == len(acked):
                            break
                        await anyio.sleep(0.05)
                wal = db.with_name(db.name + "-wal")
                assert not wal.exists() or wal.stat().st_size < 1_000_000
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                await proc.wait()
            tg.cancel_scope.cancel()
        assert proc.returncode == 0
        rows = db_rows(db)
    assert rows.keys() == acked.keys()
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert sorted(r["payload"]["n"] for r in rows.values()) == sorted(acked.values())
    assert {p.name for p in marks.iterdir()} == set(acked)  # no refused task ever ran
