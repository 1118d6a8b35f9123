"""Bulk actions over waiting tasks (issues 12 and the bulk issue together): a bulk cancel
takes a delayed or blocked task out of the waiting room and frees its unique key; a bulk
delete frees the keys of the tasks it deletes; a bulk retry keeps the parents."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from enginekit import make_engine, wait_final

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.bulk import BulkFilter, run_bulk
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.errors import Duplicate

pytestmark = pytest.mark.anyio


def _spec(**kw: Any) -> TaskSpec:
    return TaskSpec(type="default_task", **kw)


async def test_bulk_cancel_of_delayed_and_blocked_tasks_leaves_nothing_waiting() -> None:
    clock = FakeClock()
    async with make_engine(clock=clock) as engine:
        engine.pause()
        (later,) = await engine.submit_many([_spec(run_at=clock.now() + 60, unique_key="u")])
        parent, child = await engine.submit_many([_spec(), _spec(depends_on=("$0",))])
        counts = engine.stats().tasks
        assert (counts.pending, counts.scheduled, counts.blocked) == (1, 1, 1)
        result = await run_bulk(engine, "cancel", BulkFilter(ids=[later.id, child.id]))
        assert (result.matched, result.changed) == (2, 2)
        assert later.status is child.status is TaskStatus.CANCELLED
        counts = engine.stats().tasks
        assert (counts.pending, counts.scheduled, counts.blocked) == (1, 0, 0)
        # The key is free again: a new task with it is admitted, not a duplicate.
        (again,) = await engine.submit_many([_spec(unique_key="u")])
        assert again.id != later.id
        engine.resume()
        await wait_final(engine, parent)
        clock.advance(120)  # the cancelled task's heap entry is skipped, not run
        await wait_final(engine, again)
        await anyio.sleep(0.01)
        assert later.status is child.status is TaskStatus.CANCELLED
        assert engine.stats().queue.depth == 0


async def test_bulk_delete_frees_the_unique_key_of_a_deleted_task() -> None:
    async with make_engine() as engine:
        (first,) = await engine.submit_many([_spec(unique_key="w", unique_for=3600.0)])
        await wait_final(engine, first)
        with pytest.raises(Duplicate):
            await engine.submit_many([_spec(unique_key="w")])
        result = await run_bulk(engine, "delete", BulkFilter(ids=[first.id]))
        assert result.changed == 1
        (second,) = await engine.submit_many([_spec(unique_key="w", on_duplicate="return")])
        assert second.id != first.id  # never the deleted task


async def test_bulk_retry_keeps_the_parents() -> None:
    async with make_engine() as engine:
        parent, child = await engine.submit_many(
            [_spec(), _spec(depends_on=("$0",), payload={"fail": True})]
        )
        await wait_final(engine, child)
        assert child.status is TaskStatus.FAILED
        result = await run_bulk(engine, "retry", BulkFilter(ids=[child.id]))
        assert result.changed == 1
        (again,), _ = await engine.list_tasks(q=None, limit=1)
        assert again.retry_of == child.id and again.depends_on == (parent.id,)
