"""A live dashboard over a real engine on the test's event loop, and waiting helpers."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from rich.console import Console
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from workerpool_tui.core import Engine, TaskSpec, TaskStatus
from workerpool_tui.tui.app import DashboardApp

from .factory import make_config

SIZE = (160, 48)


def live_config(**worker: object) -> Any:
    w: dict[str, object] = {
        "min_workers": 2,
        "max_workers": 4,
        "enable_auto_scaling": False,
        "shutdown_timeout": "1s",
    }
    w.update(worker)
    return make_config(worker=w)


@asynccontextmanager
async def live_app(
    keymap: dict[str, str] | None = None, **worker: object
) -> AsyncIterator[tuple[Engine, DashboardApp, Pilot[int]]]:
    async with Engine(live_config(**worker)) as engine:
        app = DashboardApp(engine, keymap=keymap)
        async with app.run_test(size=SIZE) as pilot:
            yield engine, app, pilot


async def until(pilot: Pilot[Any], condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds; fail after ``limit_s`` seconds."""
    with anyio.fail_after(limit_s):
        while not _holds(condition):
            await pilot.pause(0.02)


def _holds(condition: Callable[[], bool]) -> bool:
    try:
        return condition()
    except NoMatches:  # the screen is not composed yet
        return False


def plain(widget: Widget) -> str:
    """The text a Static shows, rendered without styles."""
    assert isinstance(widget, Static)
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()


def long_task(priority: int = 0) -> TaskSpec:
    return TaskSpec(
        type="long_running_task", payload={"duration": 60, "steps": 600}, priority=priority
    )


def status_of(engine: Engine, task_id: str) -> TaskStatus:
    task = engine.get(task_id)
    assert task is not None
    return task.status
