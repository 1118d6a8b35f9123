"""Opening a store: the integrity check runs beside the loading and is always waited for."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import pytest
from store_helpers import db_rows, fill_store, open_ids

from workerpool_tui.store.sqlite import StoreError

pytestmark = pytest.mark.anyio


def _checkers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "workerpool-store check"]


async def test_a_sound_store_loads_and_leaves_no_thread_behind(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    with anyio.fail_after(20):
        ids = await fill_store(db, 50)
        assert await open_ids(db) == ids
        assert await open_ids(db) == ids  # and again: nothing was damaged by the check
    assert _checkers() == []


async def test_damage_found_while_loading_and_checking_is_refused(tmp_path: Path) -> None:
    """Both threads read damaged pages; either way the file is refused, untouched."""
    db = tmp_path / "tasks.db"
    with anyio.fail_after(20):
        await fill_store(db, 300)
    data = bytearray(db.read_bytes())
    page = 4096
    data[3 * page : 5 * page] = bytes(range(256)) * (2 * page // 256)
    db.write_bytes(bytes(data))
    with anyio.fail_after(20), pytest.raises(StoreError, match=r"is corrupt.*left untouched"):
        await open_ids(db)
    assert db.read_bytes() == bytes(data)
    assert _checkers() == []


async def test_a_store_not_in_wal_mode_is_checked_first_then_switched(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    with anyio.fail_after(20):
        ids = await fill_store(db, 20)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    conn.close()
    with anyio.fail_after(20):
        assert await open_ids(db) == ids
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert len(db_rows(db)) == 20
