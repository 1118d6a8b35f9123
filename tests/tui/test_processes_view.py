"""The Workers screen lists the worker processes when a type runs in them (issue #13)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from workerpool_tui.core import Engine, TaskSpec, TaskStatus
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.screens.workers import WorkersScreen

from .factory import make_config
from .harness import SIZE, plain, until

pytestmark = pytest.mark.anyio


async def test_workers_screen_shows_the_worker_processes() -> None:
    cfg = make_config(
        worker={"min_workers": 2, "max_workers": 2, "enable_auto_scaling": False, "processes": 1},
        task={"types": {"default_task": {"isolation": "process"}}},
    )
    async with Engine(cfg) as engine:
        app = DashboardApp(engine)
        async with app.run_test(size=SIZE) as pilot:
            task = await engine.submit(TaskSpec(type="default_task"))
            await until(pilot, lambda: task.status is TaskStatus.COMPLETED, limit_s=30)
            await pilot.press("W")
            await until(pilot, lambda: isinstance(app.screen, WorkersScreen))
            screen = app.screen
            assert isinstance(screen, WorkersScreen)
            assert engine.procs is not None
            (pid,) = engine.procs.pids()
            table = screen.query_one("#processes-table", DataTable)
            await until(pilot, lambda: table.row_count == 1)
            row = [str(c) for c in table.get_row_at(0)]
            assert row[:3] == ["0", str(pid), "-"]
            assert row[5:] == ["1", "0"]  # one task done, no restart
            summary = plain(screen.query_one("#processes-summary", Static))
            assert "1 worker process, 0 busy, 0 restarts" in summary
