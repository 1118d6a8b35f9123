"""The store file: one process at a time, corrupt or foreign files refused untouched,
schema migration, and retention reaching the file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from store_helpers import db_rows, fill_store, make_engine, open_ids, store_config

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.store.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    StoreError,
    StoreLocked,
)

pytestmark = pytest.mark.anyio


def _serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workerpool_tui", "serve", "--no-server", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_second_instance_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        with pytest.raises(StoreLocked, match=f"store {db} is in use by process {os.getpid()}"):
            await open_ids(db)
        # The same through the command line: one line, exit 2.
        config = tmp_path / "config.toml"
        config.write_text(f'[store]\npath = "{db}"\n')
        out = await anyio.to_thread.run_sync(_serve, config)
        assert out.returncode == 2
        assert out.stderr.strip() == (
            f"error: store {db} is in use by process {os.getpid()};"
            ' use --store PATH for another store, or --store "" for memory only'
        )
        assert "Traceback" not in out.stderr
        # The running engine is unaffected.
        t = await engine.submit(TaskSpec(type="gated", payload={"wait": False}))
        await engine.wait_finished(t.id)
    assert await open_ids(db) == [t.id]  # released at close


_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
owner = str(os.getpid()) if sys.argv[2] == "self" else sys.argv[2]
os.ftruncate(fd, 0)  # as the store does: a shorter PID must not leave digits behind
os.pwrite(fd, (owner + "\\n").encode(), 0)
print("locked", flush=True)
sys.stdin.read()  # hold the lock until told, then a moment longer
time.sleep(0.3)
"""


async def test_a_lock_whose_owner_is_dead_is_waited_for(tmp_path: Path) -> None:
    """After a kill -9 the writer process holds the lock for the moment it takes to die,
    with the dead parent's PID in the file: the next instance waits instead of failing."""
    db = tmp_path / "tasks.db"
    lock = str(db) + ".lock"
    dead = await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])
    holder = await anyio.open_process(
        [sys.executable, "-c", _HOLD_LOCK, lock, dead.stdout.decode().strip()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    async with holder:
        assert holder.stdin is not None and holder.stdout is not None
        assert b"locked" in await holder.stdout.receive()
        await holder.stdin.aclose()  # the holder lets go in 0.3 s
        with anyio.fail_after(10):
            assert await open_ids(db) == []  # waited for it rather than refused
    # A live owner is refused at once.
    me = await anyio.open_process(
        [sys.executable, "-c", _HOLD_LOCK, lock, "self"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    async with me:
        assert me.stdout is not None and me.stdin is not None
        assert b"locked" in await me.stdout.receive()
        with pytest.raises(StoreLocked, match=f"in use by process {me.pid}"):
            await open_ids(db)
        await me.stdin.aclose()


async def test_garbage_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    junk = b"these are not the tasks you are looking for\n" * 100
    db.write_bytes(junk)
    with pytest.raises(StoreError, match=r"is not an SQLite database.*left untouched"):
        await open_ids(db)
    assert db.read_bytes() == junk
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{db}"\n')
    out = await anyio.to_thread.run_sync(_serve, config)
    assert out.returncode == 2 and "is not an SQLite database" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert db.read_bytes() == junk


async def test_damaged_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    await fill_store(db, 300)
    data = bytearray(db.read_bytes())
    page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    assert len(data) > 6 * page
    data[3 * page : 5 * page] = bytes(range(256)) * (2 * page // 256)
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"corrupt.*left untouched"):
        await open_ids(db)
    assert db.read_bytes() == bytes(data)
    assert f"{db.name}-wal" not in {p.name for p in db.parent.iterdir()}


async def test_foreign_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        await open_ids(db)
    assert db.read_bytes() == before


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    await fill_store(db, 2)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        await open_ids(db)
    assert db.read_bytes() == before


def _old_store(db: Path, version: int, script: str) -> None:
    """A store file of an older schema ``version``, written by hand with ``script``."""
    conn = sqlite3.connect(db)
    conn.executescript(
        f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {version};" + script
    )
    conn.close()


async def test_version_1_file_is_migrated(tmp_path: Path) -> None:
    """Schema 1 (written here by hand) had no retry links and no log lines."""
    db = tmp_path / "tasks.db"
    _old_store(
        db,
        1,
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT NOT NULL,
            status TEXT NOT NULL, priority INTEGER NOT NULL, payload TEXT NOT NULL,
            progress REAL NOT NULL, message TEXT, result TEXT, error TEXT,
            attempts INTEGER NOT NULL, max_retries INTEGER NOT NULL, timeout_s REAL NOT NULL,
            created_at REAL NOT NULL, started_at REAL, finished_at REAL, worker INTEGER
        );
        INSERT INTO tasks VALUES ('old-done', 1, 'gated', 'completed', 0, '{"a":1}', 100.0,
            NULL, '{"ok":true}', NULL, 1, 0, 300.0, 1790000000.0, 1790000001.0,
            1790000002.0, 3);
        INSERT INTO tasks VALUES ('old-failed', 2, 'gated', 'failed', 0, '{"wait":false}', 40.0,
            'hm',
            NULL, '{"type":"timeout","message":"timed out after 1s","traceback":null}',
            1, 0, 1.0, 1790000000.0, 1790000001.0, 1790000002.0, 1);
        INSERT INTO tasks VALUES ('old-pending', 3, 'gated', 'pending', 7, '{"wait":false}',
            0.0, NULL, NULL, NULL, 0, 0, 300.0, 1790000003.0, NULL, NULL, NULL);
        """,
    )

    engine, journal = make_engine(store_config(db), db)
    async with engine:
        done = engine.get("old-done")
        assert done is not None and done.status is TaskStatus.COMPLETED
        assert done.result == {"ok": True} and done.payload == {"a": 1} and done.worker == 3
        assert done.retry_of is None and done.logs is None
        failed = engine.get("old-failed")
        assert failed is not None and failed.error is not None
        assert failed.error.type == "timeout" and failed.message == "hm"
        pending = await engine.wait_finished("old-pending")
        assert pending.status is TaskStatus.COMPLETED and pending.priority == 7
        retry = await engine.retry("old-failed")
        assert (await engine.wait_finished(retry.id)).status is TaskStatus.COMPLETED
        await journal.commit()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    rows = db_rows(db)
    assert rows[retry.id]["retry_of"] == "old-failed"
    assert rows["old-pending"]["logs"] == ["started attempt 1"]


async def test_version_2_file_is_migrated(tmp_path: Path) -> None:
    """Schema 2 (written here by hand) had one column per field, with JSON values."""
    db = tmp_path / "tasks.db"
    _old_store(
        db,
        2,
        """
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL,
            status TEXT NOT NULL, priority INTEGER NOT NULL, payload TEXT NOT NULL,
            progress REAL NOT NULL, message TEXT, result TEXT, error TEXT,
            attempts INTEGER NOT NULL, max_retries INTEGER NOT NULL, timeout_s REAL NOT NULL,
            created_at REAL NOT NULL, started_at REAL, finished_at REAL, worker INTEGER,
            retry_of TEXT, logs TEXT
        );
        INSERT INTO tasks VALUES (1, 'v2-failed', 'gated', 'failed', 2, '{"wait":false}',
            40.0, 'hm', NULL,
            '{"type":"ValueError","message":"bad","traceback":"Traceback ..."}',
            2, 1, 5.0, 1790000000.0, 1790000001.0, 1790000002.0, 4, NULL,
            '["one","two"]');
        INSERT INTO tasks VALUES (2, 'v2-again', 'gated', 'completed', 0, '{"n":[1,2.5]}',
            100.0, NULL, '{"ok":true}', NULL, 1, 0, 300.0, 1790000003.0, 1790000004.0,
            1790000005.0, 1, 'v2-failed', NULL);
        """,
    )

    engine, journal = make_engine(store_config(db), db)
    async with engine:
        failed = engine.get("v2-failed")
        assert failed is not None and failed.status is TaskStatus.FAILED
        assert failed.error is not None and failed.error.traceback == "Traceback ..."
        assert (failed.priority, failed.attempts, failed.max_retries) == (2, 2, 1)
        assert (failed.timeout_s, failed.worker, failed.message) == (5.0, 4, "hm")
        assert list(failed.logs or ()) == ["one", "two"]
        again = engine.get("v2-again")
        assert again is not None and again.retry_of == "v2-failed"
        assert again.payload == {"n": [1, 2.5]} and again.result == {"ok": True}
        assert again.finished_at == 1790000005.0
        await journal.commit()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert db_rows(db)["v2-failed"]["logs"] == ["one", "two"]


async def test_retention_keeps_failures_longer(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    clock = FakeClock()
    cfg = store_config(db, cleanup_completed_tasks_after=60.0, keep_failed_for=3600.0)
    engine, journal = make_engine(cfg, db, clock=clock)
    async with engine:
        ok = await engine.submit(TaskSpec(type="gated", payload={"wait": False}))
        bad = await engine.submit(TaskSpec(type="default_task", payload={"fail": True}))
        await engine.wait_finished(ok.id)
        await engine.wait_finished(bad.id)
        clock.advance(120)
        assert engine.run_cleanup() == 1
        await journal.commit()
        assert db_rows(db).keys() == {bad.id}
        clock.advance(3600)
        assert engine.run_cleanup() == 1
        await journal.commit()
        assert db_rows(db) == {}
    assert await open_ids(db) == []


async def test_max_tracked_tasks_applies_to_the_store(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    cfg = store_config(db, queue_capacity=5, max_concurrent_tasks=1, max_tracked_tasks=8)
    engine, journal = make_engine(cfg, db)
    async with engine:
        for _ in range(12):
            t = await engine.submit(TaskSpec(type="gated", payload={"wait": False}))
            await engine.wait_finished(t.id)
        await journal.commit()
        tracked = {t.id for t in (await engine.list_tasks(limit=100))[0]}
        assert len(tracked) == 8
        assert db_rows(db).keys() == tracked
