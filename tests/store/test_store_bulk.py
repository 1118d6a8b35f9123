"""A bulk delete reaches the SQLite file: the deleted tasks are not there on the next start;
a bulk cancel is written like a single one."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import fill_store, make_engine, open_ids, store_config

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.bulk import BulkFilter, run_bulk

pytestmark = pytest.mark.anyio


async def test_bulk_delete_and_cancel_are_durable(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    done = await fill_store(db, 6)
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        engine.pause()
        waiting = await engine.submit_many([TaskSpec(type="gated") for _ in range(3)])
        gone = await run_bulk(engine, "delete", BulkFilter(ids=done[:4]))
        assert (gone.matched, gone.changed) == (4, 4)
        cancelled = await run_bulk(engine, "cancel", BulkFilter(status=[TaskStatus.PENDING]))
        assert cancelled.changed == 3
    left = set(await open_ids(db))
    assert left == set(done[4:]) | {t.id for t in waiting}
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        for task in waiting:
            again = engine.get(task.id)
            assert again is not None and again.status is TaskStatus.CANCELLED
