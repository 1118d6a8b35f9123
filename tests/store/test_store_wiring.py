"""The store as the runtime builds it from ``[store]``, and the writer's guard rails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from store_helpers import db_rows, make_engine, store_config

from workerpool_tui.config import Config, StoreConfig
from workerpool_tui.core import Task, TaskSpec
from workerpool_tui.core.errors import StoreUnavailable
from workerpool_tui.core.journal import MemoryJournal
from workerpool_tui.runtime import Runtime, make_journal
from workerpool_tui.store.sqlite import SqliteJournal

pytestmark = pytest.mark.anyio


def test_make_journal_follows_store_path(tmp_path: Path) -> None:
    assert isinstance(make_journal(Config(store=StoreConfig(path=""))), MemoryJournal)
    auto = make_journal(Config())
    assert isinstance(auto, SqliteJournal)
    assert auto.path == Path(os.environ["XDG_DATA_HOME"]) / "workerpool-tui" / "tasks.db"
    full = make_journal(Config(store=StoreConfig(path=str(tmp_path / "x.db"), sync="full")))
    assert isinstance(full, SqliteJournal) and full.sync == "full"


async def test_runtime_with_the_default_store_keeps_tasks(tmp_path: Path) -> None:
    cfg = Config()  # store.path = "auto": the (test's own) XDG data directory
    async with Runtime(cfg, with_server=False) as rt:
        task = await rt.engine.submit(TaskSpec(type="default_task", payload={"keep": 1}))
        await rt.engine.wait_finished(task.id)
    db = Path(os.environ["XDG_DATA_HOME"]) / "workerpool-tui" / "tasks.db"
    assert db_rows(db)[task.id]["result_json"] is not None
    async with Runtime(cfg, with_server=False) as rt:
        again = rt.engine.get(task.id)
        assert again is not None and again.result == task.result


async def test_a_reused_seq_is_refused_not_overwritten(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, journal = make_engine(store_config(db), db)
    with pytest.raises(StoreUnavailable, match="share one seq"):
        async with engine:  # the final commit fails too, and the store is still closed
            engine.pause()
            first = await engine.submit(TaskSpec(type="gated"))
            clash = Task(id="someone-else", type="gated", payload={}, seq=first.seq)
            journal.changed(clash)
            with pytest.raises(StoreUnavailable, match="share one seq"):
                await journal.commit()
    assert db_rows(db)[first.id]["id"] == first.id
    again, _ = make_engine(store_config(db), db)
    async with again:  # unlocked
        assert again.get(first.id) is not None
