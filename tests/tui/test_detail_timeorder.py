"""The detail view of a task that waits for a time and for a parent (issue 12)."""

from __future__ import annotations

import pytest

from workerpool_tui.core import TaskSpec
from workerpool_tui.tui.screens.detail import DetailScreen
from workerpool_tui.tui.widgets.task_table import TaskTable

from .harness import live_app, plain, until

pytestmark = pytest.mark.anyio


async def test_detail_shows_run_at_parents_and_unique_key() -> None:
    async with live_app() as (engine, app, pilot):
        engine.pause()
        parent, child = await engine.submit_many(
            [
                TaskSpec(type="default_task"),
                TaskSpec(
                    type="default_task",
                    depends_on=("$0",),
                    run_at=engine.clock.now() + 600,
                    unique_key="nightly",
                ),
            ]
        )
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.highlighted_id == child.id)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        timeline = plain(app.screen.query_one("#detail-timeline"))
        assert f"parents  {parent.id}" in timeline
        assert "runs at" in timeline and "unique   nightly" in timeline
