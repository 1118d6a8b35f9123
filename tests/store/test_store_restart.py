"""Restart with pending, running and finished tasks: each comes back as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest
from store_helpers import Gate, copy_store, db_rows, make_engine, store_config, wait_status

from workerpool_tui.core import Engine, TaskSpec, TaskStatus
from workerpool_tui.core.errors import StoreUnavailable
from workerpool_tui.store.sqlite import SyncMode

pytestmark = pytest.mark.anyio


async def _populate(engine: Engine) -> dict[str, str]:
    """One task of each kind; returns their ids by role. One worker: ``running`` holds it."""
    ids: dict[str, str] = {}
    done = await engine.submit(TaskSpec(type="gated", payload={"wait": False, "n": 1}))
    await engine.wait_finished(done.id)
    ids["completed"] = done.id
    failed = await engine.submit(TaskSpec(type="default_task", payload={"fail": True}))
    await engine.wait_finished(failed.id)
    ids["failed"] = failed.id
    running = await engine.submit(TaskSpec(type="gated", payload={"k": "r"}, max_retries=0))
    await wait_status(engine, running.id, TaskStatus.RUNNING)
    ids["running"] = running.id
    # Queued behind the running task: low, high, high, mid priority.
    for name, prio in (("low", -1), ("high1", 5), ("high2", 5), ("mid", 0)):
        t = await engine.submit(TaskSpec(type="gated", payload={"k": name}, priority=prio))
        ids[name] = t.id
    cancelled = await engine.submit(TaskSpec(type="gated", payload={"k": "c"}))
    await engine.cancel(cancelled.id)
    ids["cancelled"] = cancelled.id
    retried = await engine.retry(ids["failed"])
    ids["retry"] = retried.id
    return ids


async def test_restart_brings_every_task_back(tmp_path: Path) -> None:
    db, crash = tmp_path / "tasks.db", tmp_path / "crash.db"
    cfg = store_config(db)
    gate = Gate()
    engine, journal = make_engine(cfg, db, gate)
    async with engine:
        ids = await _populate(engine)
        await journal.commit()
        before = {i: engine.get(i) for i in ids.values()}
        # The running task logged a line; it reaches the store with the next change.
        engine.get(ids["running"]).add_log("marker")  # type: ignore[union-attr]
        journal.changed(engine.get(ids["running"]))  # type: ignore[arg-type]
        await journal.commit()
        copy_store(db, tmp_path / "crash.db")  # the files as a kill -9 would leave them
        before_rows = {i: (t.status, t.attempts) for i, t in before.items() if t}
        gate.opened.set()
    assert before_rows[ids["running"]] == (TaskStatus.RUNNING, 1)

    gate2 = Gate()
    engine2, _ = make_engine(store_config(crash), crash, gate2)
    async with engine2:
        got = {name: engine2.get(i) for name, i in ids.items()}
        assert all(t is not None for t in got.values())
        c = got["completed"]
        assert c is not None and c.status is TaskStatus.COMPLETED
        assert c.result == {"echo": {"wait": False, "n": 1}}
        assert c.progress == 100.0 and c.attempts == 1 and c.worker == 1
        assert c.logs is not None and list(c.logs) == ["started attempt 1"]
        orig = before[ids["completed"]]
        assert orig is not None
        assert (c.created_at, c.started_at, c.finished_at, c.seq) == (
            orig.created_at,
            orig.started_at,
            orig.finished_at,
            orig.seq,
        )
        f = got["failed"]
        assert f is not None and f.status is TaskStatus.FAILED
        assert f.error is not None and f.error.type == "DemoFailure"
        assert f.error.traceback and "Traceback" in f.error.traceback
        x = got["cancelled"]
        assert x is not None and x.status is TaskStatus.CANCELLED
        assert x.message == "cancelled by request"
        r = got["retry"]
        assert r is not None and r.retry_of == ids["failed"] and r.payload == {"fail": True}
        # The interrupted task is re-queued with its attempt counted, logs kept.
        run = got["running"]
        assert run is not None and run.attempts >= 1
        assert run.logs is not None and "marker" in run.logs
        # Work comes back in the original order: priority, then submission.
        gate2.opened.set()
        for name in ("running", "high1", "high2", "mid", "low", "retry"):
            await engine2.wait_finished(ids[name])
        assert engine2.get(ids["running"]).attempts == 2  # type: ignore[union-attr]
        order = [i for i in gate2.ran if i in ids.values()]
        # The interrupted task kept its priority (0) and place: after the higher ones.
        assert order == [ids[n] for n in ("high1", "high2", "running", "mid", "low")]
        assert engine2.get(ids["retry"]).status is TaskStatus.FAILED  # type: ignore[union-attr]
        # New work continues the submission order after the recovered tasks.
        new = await engine2.submit(TaskSpec(type="gated", payload={"wait": False}))
        assert new.seq > max(t.seq for t in got.values() if t)
        await engine2.wait_finished(new.id)
    rows = db_rows(crash)
    assert rows[ids["running"]]["status"] == "completed"
    assert rows[ids["running"]]["attempts"] == 2


async def test_running_tasks_fail_when_configured(tmp_path: Path) -> None:
    db, crash = tmp_path / "tasks.db", tmp_path / "crash.db"
    gate = Gate()
    engine, journal = make_engine(store_config(db), db, gate)
    async with engine:
        running = await engine.submit(TaskSpec(type="gated"))
        await wait_status(engine, running.id, TaskStatus.RUNNING)
        pending = await engine.submit(TaskSpec(type="gated", payload={"wait": False}))
        await journal.commit()
        copy_store(db, crash)
        gate.opened.set()

    engine2, journal2 = make_engine(store_config(crash, recover_running="fail"), crash)
    async with engine2:
        t = engine2.get(running.id)
        assert t is not None and t.status is TaskStatus.FAILED
        assert t.error is not None and t.error.type == "interrupted"
        assert t.finished_at is not None
        done = await engine2.wait_finished(pending.id)
        assert done.status is TaskStatus.COMPLETED
        await journal2.commit()
    assert db_rows(crash)[running.id]["status"] == "failed"


async def test_graceful_stop_keeps_pending_tasks_pending(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    gate = Gate()
    engine, _ = make_engine(store_config(db), db, gate)
    async with engine:
        blocker = await engine.submit(TaskSpec(type="gated"))
        await wait_status(engine, blocker.id, TaskStatus.RUNNING)
        queued = await engine.submit(TaskSpec(type="gated", payload={"wait": False}))
    # shutdown_timeout (0.2 s) passed: the running task was cancelled, the queued one kept.
    rows = db_rows(db)
    assert rows[blocker.id]["status"] == "cancelled"
    assert rows[queued.id]["status"] == "pending"
    engine2, _ = make_engine(store_config(db), db)
    async with engine2:
        done = await engine2.wait_finished(queued.id)
        assert done.status is TaskStatus.COMPLETED


@pytest.mark.parametrize("sync", ["normal", "full", "off"])
async def test_acknowledged_means_committed(tmp_path: Path, sync: SyncMode) -> None:
    """Once ``submit`` returns, another connection already sees the row."""
    db = tmp_path / "tasks.db"
    engine, _ = make_engine(store_config(db, workers=1), db, sync=sync)
    async with engine:
        engine.pause()
        tasks = await engine.submit_many(
            [TaskSpec(type="gated", payload={"i": i}) for i in range(50)]
        )
        rows = db_rows(db)
        assert {t.id for t in tasks} <= rows.keys()
        assert rows[tasks[7].id]["payload"] == {"i": 7}


async def test_progress_is_coalesced(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, journal = make_engine(store_config(db), db)
    async with engine:
        engine.pause()
        task = await engine.submit(TaskSpec(type="gated"))
        before = journal.rows_written
        for pct in range(1000):  # no await in between: one batch
            task.progress = pct / 10
            journal.changed(task)
        await journal.commit()
        assert journal.rows_written - before == 1
        assert db_rows(db)[task.id]["progress"] == 99.9


async def test_write_failure_is_reported_and_retried(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        engine.pause()
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("ALTER TABLE tasks RENAME TO hidden")
        with pytest.raises(StoreUnavailable, match="cannot write"):
            await engine.submit(TaskSpec(type="gated"))
        other.execute("ALTER TABLE hidden RENAME TO tasks")
        other.close()
        with anyio.fail_after(10):
            while True:  # refused at once until the store's next attempt succeeds
                try:
                    task = await engine.submit(TaskSpec(type="gated"))
                    break
                except StoreUnavailable as exc:
                    await anyio.sleep(exc.retry_after_s / 10)
        assert list(db_rows(db)) == [task.id]  # the refused one left no row
        assert [t.id for t in (await engine.list_tasks())[0]] == [task.id]
