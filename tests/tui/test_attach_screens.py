"""The attached dashboard's other screens and bulk actions, against a real server."""

from __future__ import annotations

import anyio
import pytest
from textual.widgets import Button, DataTable

from workerpool_tui.core import TaskStatus
from workerpool_tui.core.schedules import ScheduleSpec
from workerpool_tui.tui.screens.bulk import BulkScreen
from workerpool_tui.tui.screens.confirm import ConfirmScreen
from workerpool_tui.tui.screens.instances import InstancesScreen
from workerpool_tui.tui.screens.schedules import SchedulesScreen
from workerpool_tui.tui.screens.workers import WorkersScreen
from workerpool_tui.tui.widgets.task_table import TaskTable

from .attach_harness import attached, serve
from .harness import long_task, until

pytestmark = pytest.mark.anyio


async def test_bulk_cancel_of_marked_rows_reaches_the_server() -> None:
    async with serve() as server:
        engine = server.engine
        engine.pause()
        tasks = await engine.submit_many([long_task() for _ in range(4)])
        async with attached(server.address) as (app, _source, pilot):
            table = app.query_one(TaskTable)
            await until(pilot, lambda: table.row_count == 4)
            table.focus()
            await pilot.press("space", "down", "space")  # the two newest
            await until(pilot, lambda: len(table.marked) == 2)
            await pilot.press("B")
            await until(pilot, lambda: isinstance(app.screen, BulkScreen))
            cancel = app.screen.query_one("#bulk-cancel", Button)
            assert "Cancel 2 of 2" in str(cancel.label)  # the server's dry run
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            newest = {tasks[3].id, tasks[2].id}
            cancelled = TaskStatus.CANCELLED
            await until(pilot, lambda: all(engine.get(t).status is cancelled for t in newest))  # type: ignore[union-attr]
            # The server's bulk event and fresh snapshot reach the view.
            await until(pilot, lambda: all(app.bridge.get(t).status is cancelled for t in newest))  # type: ignore[union-attr]


async def test_workers_instances_and_schedules_screens_read_the_server() -> None:
    async with serve() as server:
        engine = server.engine
        with anyio.fail_after(5):
            await engine.scheduler.ready.wait()
        await engine.scheduler.add(ScheduleSpec(name="tick", type="default_task", every=3600.0))
        [task] = await engine.submit_many([long_task()])
        async with attached(server.address) as (app, _source, pilot):
            await pilot.press("W")
            await until(pilot, lambda: isinstance(app.screen, WorkersScreen))
            workers = app.screen
            assert isinstance(workers, WorkersScreen)
            await until(pilot, lambda: any(w.task_id == task.id for w in workers.rows))
            assert len(workers.rows) == engine.pool_state().current

            await pilot.press("I")
            await until(pilot, lambda: isinstance(app.screen, InstancesScreen))
            instances = app.screen
            assert isinstance(instances, InstancesScreen)
            await until(pilot, lambda: instances.polls >= 1)
            assert not instances.cluster and len(instances.instances) == 1

            await pilot.press("S")
            await until(pilot, lambda: isinstance(app.screen, SchedulesScreen))
            screen = app.screen
            assert isinstance(screen, SchedulesScreen)
            await until(pilot, lambda: [s.spec.name for s in screen.rows] == ["tick"])
            row = [str(c) for c in screen.query_one(DataTable).get_row_at(0)]
            assert row[:2] == ["tick", "every 1h00m"] and row[6] == "api"
            await pilot.press("p")  # pause it, on the server
            await until(pilot, lambda: engine.scheduler.get("tick").spec.paused)
            await pilot.press("r")  # one run now
            await until(pilot, lambda: engine.scheduler.get("tick").last_task_id is not None)
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: "tick" not in engine.scheduler.schedules)
