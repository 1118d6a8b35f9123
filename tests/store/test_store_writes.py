"""What the writer puts in the file: a whole row once, then only what changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest
from store_helpers import db_rows, unexpected_fatal

from workerpool_tui.core.models import Task, TaskError, TaskStatus
from workerpool_tui.store.sqlite import SqliteJournal

pytestmark = pytest.mark.anyio


def _task(seq: int) -> Task:
    return Task(
        id=f"task{seq:04d}",
        type="gated",
        payload={"n": seq, "text": "ü"},
        priority=seq % 3,
        max_retries=2,
        timeout_s=9.5,
        created_at=1795873500.5 + seq,
        seq=seq,
    )


def _finish(task: Task, n: int) -> None:
    task.status = TaskStatus.RUNNING
    task.attempts = 1
    task.started_at = task.created_at + 0.25
    task.worker = 3
    task.progress = 50.0
    task.message = f"half of {n}"
    task.add_log(f"line {n}")
    if n % 2:
        task.status = TaskStatus.FAILED
        task.error = TaskError("ValueError", f"bad {n}", "Traceback ...\n")
    else:
        task.status = TaskStatus.COMPLETED
        task.result = {"n": n, "list": [1, 2.5, None]}
    task.finished_at = task.created_at + 1.0


def _expected(task: Task) -> Task:
    """The task as the store gives it back (a fresh copy)."""
    return Task(**{f: getattr(task, f) for f in task.__struct_fields__})


async def _reload(db: Path) -> list[Task]:
    journal = SqliteJournal(db)
    async with anyio.create_task_group() as tg:
        tasks = await journal.open(tg, unexpected_fatal)
        await journal.close()
    return tasks


async def test_changes_after_the_insert_reach_the_row(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    journal = SqliteJournal(db)
    tasks = [_task(seq) for seq in range(1, 501)]  # several statements' worth
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            assert await journal.open(tg, unexpected_fatal) == []
            for task in tasks:
                journal.changed(task)
            await journal.commit()
            # Every row exists now: these changes go out as updates of the mutable columns.
            for n, task in enumerate(tasks):
                _finish(task, n)
                journal.changed(task)
            # One new task in the same batch as the updates gets its whole row.
            late = _task(501)
            journal.changed(late)
            await journal.commit()
            await journal.close()
        back = await _reload(db)
    assert back == [*tasks, late]
    assert journal.rows_written == 1001


async def test_a_vanished_row_is_written_whole_again(tmp_path: Path) -> None:
    """An update that finds no row (deleted behind the store's back) writes the full row."""
    db = tmp_path / "tasks.db"
    journal = SqliteJournal(db)
    tasks = [_task(seq) for seq in range(1, 4)]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await journal.open(tg, unexpected_fatal)
            for task in tasks:
                journal.changed(task)
            await journal.commit()
            other = sqlite3.connect(db, timeout=5.0)
            with other:
                other.execute("DELETE FROM tasks WHERE seq = 2")
            other.close()
            assert set(db_rows(db)) == {"task0001", "task0003"}
            for n, task in enumerate(tasks):
                _finish(task, n)
                journal.changed(task)
            await journal.commit()
            await journal.close()
        back = await _reload(db)
    assert back == [_expected(t) for t in tasks]
    assert db_rows(db)["task0002"]["payload"] == {"n": 2, "text": "ü"}


async def test_a_row_of_another_task_under_the_same_seq_is_never_overwritten(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tasks.db"
    journal = SqliteJournal(db)
    first = _task(1)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await journal.open(tg, unexpected_fatal)
            journal.changed(first)
            await journal.commit()
            impostor = _task(1)
            impostor.id = "impostor"
            _finish(impostor, 2)
            journal.changed(impostor)
            with pytest.raises(Exception, match="cannot write"):
                await journal.commit()
            await journal.close()
    row = db_rows(db)
    assert set(row) == {"task0001"} and row["task0001"]["status"] == "pending"
