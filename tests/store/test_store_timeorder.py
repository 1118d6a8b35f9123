"""Delayed tasks, dependencies and unique keys in the SQLite store (schema 4): they
survive a restart, and a schema-3 file is migrated forward untouched otherwise."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from store_helpers import db_rows, make_engine, store_config

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.errors import Duplicate
from workerpool_tui.core.schedules import ScheduleSpec
from workerpool_tui.store.sqlite import APPLICATION_ID, SCHEMA_VERSION
from workerpool_tui.store.sqlite_layout import _V3_SCHEMA, SCHEMA, pack

pytestmark = pytest.mark.anyio


def _spec(**kw: object) -> TaskSpec:
    return TaskSpec(type="gated", payload={"wait": False}, **kw)  # type: ignore[arg-type]


async def test_waiting_tasks_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    clock = FakeClock()
    engine, journal = make_engine(store_config(db), db, clock=clock)
    async with engine:
        engine.pause()
        (later,) = await engine.submit_many([_spec(run_at=clock.now() + 600)])
        parent, child = await engine.submit_many([_spec(unique_key="u"), _spec(depends_on=("$0",))])
        await journal.commit()
    rows = db_rows(db)
    assert rows[later.id]["run_at"] == clock.now() + 600
    assert rows[child.id]["depends_on"] == [parent.id]
    assert rows[parent.id]["unique_key"] == "u"

    engine, journal = make_engine(store_config(db), db, clock=clock)
    async with engine:
        counts = engine.stats().tasks
        assert (counts.pending, counts.scheduled, counts.blocked) == (1, 1, 1)
        with pytest.raises(Duplicate):
            await engine.submit_many([_spec(unique_key="u")])
        done = await engine.wait_finished(child.id)
        assert done.status is TaskStatus.COMPLETED
        assert engine.get(later.id).status is TaskStatus.PENDING  # type: ignore[union-attr]
        clock.advance(601)
        with anyio.fail_after(10):
            done = await engine.wait_finished(later.id)
        assert done.status is TaskStatus.COMPLETED
        await journal.commit()


async def test_version_3_file_is_migrated(tmp_path: Path) -> None:
    """Schema 3 had no ``extra`` column: its rows load with none of the new fields."""
    db = tmp_path / "tasks.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 3")
    conn.execute(_V3_SCHEMA)
    spec = pack(({"wait": False}, 0, 0, 300.0, 1790000000.0, None))
    state = pack((0.0, None, None, None, 0, None, None, None, None))
    conn.execute(
        "INSERT INTO tasks VALUES (1, 'v3-pending', 'gated', 'pending', ?, ?)", (spec, state)
    )
    conn.commit()
    conn.close()

    engine, journal = make_engine(store_config(db), db)
    async with engine:
        again = await engine.wait_finished("v3-pending")
        assert again.status is TaskStatus.COMPLETED and again.depends_on is None
        await journal.commit()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    columns = [r[1] for r in conn.execute("PRAGMA table_info(tasks)")]
    conn.close()
    assert columns[-1] == "extra" and "extra" in SCHEMA


def _sched_config(db: Path, catch_up: str) -> Any:
    cfg = store_config(db)
    tick = ScheduleSpec(
        name="tick", type="gated", every=60.0, payload={"wait": False}, catch_up=catch_up
    )  # type: ignore[arg-type]
    return msgspec.structs.replace(cfg, schedule=[tick])


def _runs(engine: Any) -> list[str]:
    return sorted(
        t.unique_key
        for t in engine.registry.newest()
        if (t.unique_key or "").startswith("schedule:tick:")
    )


async def _started(engine: Any) -> None:
    with anyio.fail_after(5):
        await engine.scheduler.ready.wait()


@pytest.mark.parametrize("catch_up", ["one", "none"])
async def test_schedule_catch_up_after_downtime_fires_once_or_not(
    tmp_path: Path, catch_up: str
) -> None:
    db = tmp_path / "tasks.db"
    clock = FakeClock(1_790_000_010.0)  # 10 s past a whole minute
    engine, journal = make_engine(_sched_config(db, catch_up), db, clock=clock)
    async with engine:
        await _started(engine)
        clock.advance(50)
        async with engine.bus.subscribe(maxsize=10_000, name="test") as sub:
            with anyio.fail_after(5):
                while not _runs(engine):
                    await sub.get_batch()
        await engine.wait_finished(engine.scheduler.get("tick").last_task_id)
        await journal.commit()
    first = _runs(engine)
    assert first == ["schedule:tick:1790000040"]

    clock.advance(300)  # down for five due times
    for _ in range(2):  # a second restart right after must not fire again
        engine, journal = make_engine(_sched_config(db, catch_up), db, clock=clock)
        async with engine:
            await _started(engine)
            last = engine.scheduler.get("tick").last_task_id
            with anyio.fail_after(5):
                await engine.wait_finished(last)
            runs = _runs(engine)
            await journal.commit()
        expected = first + (["schedule:tick:1790000340"] if catch_up == "one" else [])
        assert runs == expected
