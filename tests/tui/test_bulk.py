"""The dashboard's bulk actions through Pilot over a real engine: ``space`` marks rows,
``B`` opens the menu with the counts, a choice asks first, then acts."""

from __future__ import annotations

import pytest
from textual.widgets import Button

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.tui.screens.bulk import BulkScreen
from workerpool_tui.tui.screens.confirm import ConfirmScreen
from workerpool_tui.tui.widgets.task_table import TaskTable

from .harness import live_app, long_task, status_of, until

pytestmark = pytest.mark.anyio


async def test_mark_rows_then_cancel_them_in_bulk() -> None:
    async with live_app() as (engine, app, pilot):
        engine.pause()
        tasks = await engine.submit_many([long_task() for _ in range(4)])
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.row_count == 4)
        table.focus()
        await pilot.press("space", "down", "space")  # the two newest
        await until(pilot, lambda: len(table.marked) == 2)
        newest = {tasks[3].id, tasks[2].id}
        assert table.marked == newest
        assert "●" in table.render_line(1).text and "●" in table.render_line(2).text
        assert "●" not in table.render_line(3).text
        await pilot.press("B")
        await until(pilot, lambda: isinstance(app.screen, BulkScreen))
        menu = app.screen
        assert "2 marked task(s)" in str(menu.query_one("#bulk-scope").render())
        cancel = menu.query_one("#bulk-cancel", Button)
        assert "Cancel 2 of 2" in str(cancel.label)
        assert menu.query_one("#bulk-delete", Button).disabled  # nothing final yet
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        cancelled = TaskStatus.CANCELLED
        await until(pilot, lambda: all(status_of(engine, t) is cancelled for t in newest))
        assert {t.id for t in tasks if t.status is TaskStatus.PENDING} == {tasks[0].id, tasks[1].id}
        await until(pilot, lambda: not table.marked)


async def test_bulk_over_the_filter_and_declining_changes_nothing() -> None:
    async with live_app() as (engine, app, pilot):
        engine.pause()
        await engine.submit_many([long_task() for _ in range(3)])
        await engine.submit_many([TaskSpec(type="default_task") for _ in range(2)])
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.row_count == 5)
        table.focus()
        await pilot.press("B")
        await until(pilot, lambda: isinstance(app.screen, BulkScreen))
        assert "all tasks" in str(app.screen.query_one("#bulk-scope").render())
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, (ConfirmScreen, BulkScreen)))
        assert engine.registry.counts[TaskStatus.PENDING] == 5
        await pilot.press("B")
        await until(pilot, lambda: isinstance(app.screen, BulkScreen))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: engine.registry.counts[TaskStatus.CANCELLED] == 5)
        # Then delete them: the table empties from the one bulk event.
        await pilot.press("B")
        await until(pilot, lambda: isinstance(app.screen, BulkScreen))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: len(engine.registry) == 0)
        await until(pilot, lambda: table.row_count == 0)
