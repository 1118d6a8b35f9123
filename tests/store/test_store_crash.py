"""kill -9 in the middle of a stream of submissions: nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from store_helpers import db_rows, make_engine, store_config

from workerpool_tui.core import TaskStatus

pytestmark = pytest.mark.anyio
CHILD = Path(__file__).with_name("crash_child.py")


async def _acked_then_kill(db: Path, want: int) -> set[str]:
    """Run the child until it acknowledged ``want`` tasks, SIGKILL it; the acked ids."""
    acked: set[str] = set()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    async with await anyio.open_process(
        [sys.executable, str(CHILD), str(db)], env=env, stderr=None
    ) as proc:
        assert proc.stdout is not None
        buf = b""
        try:
            with anyio.fail_after(30):
                async for chunk in proc.stdout:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")  # only whole lines were surely acked
                    for line in lines:
                        acked.update(line.decode().split())
                    if len(acked) >= want:
                        break
        finally:
            proc.send_signal(signal.SIGKILL)
            with anyio.fail_after(10):
                await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return acked


async def test_kill9_loses_no_acknowledged_task(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    acked = await _acked_then_kill(db, want=600)

    rows = db_rows(db)  # includes PRAGMA integrity_check
    assert acked <= rows.keys(), f"lost {len(acked - rows.keys())} acknowledged task(s)"
    numbers = Counter(r["payload"]["n"] for r in rows.values())
    assert max(numbers.values()) == 1, "a submission was stored twice"
    unfinished = [i for i, r in rows.items() if r["status"] in ("pending", "running")]
    assert unfinished, "the kill came too late to leave work behind"

    engine, journal = make_engine(store_config(db, workers=8), db)
    async with engine:
        assert len(engine.registry) == len(rows)
        with anyio.fail_after(30):
            for task_id in unfinished:
                task = await engine.wait_finished(task_id)
                assert task.status is TaskStatus.COMPLETED, task
        await journal.commit()
    after = db_rows(db)
    assert after.keys() == rows.keys()
    assert {r["status"] for r in after.values()} == {"completed"}
