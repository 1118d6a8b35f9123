"""The Scheduled filter: the pending tasks waiting for a time (issue 12)."""

from __future__ import annotations

import pytest

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.tui.bridge import Query
from workerpool_tui.tui.widgets.task_table import TaskTable

from .harness import live_app, status_of, until

pytestmark = pytest.mark.anyio


async def test_key_7_shows_only_the_delayed_tasks_and_when_they_run() -> None:
    async with live_app() as (engine, app, pilot):
        now = engine.clock.now()
        later = await engine.submit_many(
            [TaskSpec(type="default_task", run_at=now + 250 + i) for i in range(2)]
        )
        done = await engine.submit_many([TaskSpec(type="default_task")] * 2)
        await until(
            pilot, lambda: all(status_of(engine, t.id) is TaskStatus.COMPLETED for t in done)
        )
        table = app.query_one(TaskTable)
        await pilot.press("7")
        await until(pilot, lambda: sorted(table.shown_ids) == sorted(t.id for t in later))
        assert app.query_state.waiting == "time"
        assert "Scheduled · 2 of 2" in str(table.border_title)
        assert table.get_row(later[0].id)[5].startswith("in 4m")  # the age column
        # sorting or searching keeps the filter
        await pilot.press("s")
        assert app.query_state.waiting == "time"
        await until(pilot, lambda: sorted(table.shown_ids) == sorted(t.id for t in later))
        # one is started now: it leaves the Scheduled rows
        await engine.run_now(later[0].id)
        await until(pilot, lambda: table.shown_ids == [later[1].id])
        await pilot.press("1")
        assert app.query_state.waiting is None
        await until(pilot, lambda: len(table.shown_ids) == 4)


async def test_the_bridge_walks_only_unfinished_tasks_for_a_waiting_filter() -> None:
    async with live_app() as (engine, app, _pilot):
        now = engine.clock.now()
        later = await engine.submit_many(
            [TaskSpec(type="default_task", run_at=now + 60 + i) for i in range(5)]
        )
        blocked = await engine.submit_many(
            [TaskSpec(type="default_task", depends_on=(later[0].id,))]
        )
        rows, total = app.bridge.query(
            Query(statuses=frozenset({TaskStatus.PENDING}), waiting="time", limit=2, offset=1)
        )
        assert total == 5
        assert [t.id for t in rows] == [later[3].id, later[2].id]  # newest first, rows 1-2
        rows, total = app.bridge.query(Query(waiting="dependencies"))
        assert (total, [t.id for t in rows]) == (1, [blocked[0].id])
