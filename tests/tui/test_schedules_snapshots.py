"""Snapshot baselines of the Schedules screen and its add form, at 80x24."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Static

from workerpool_tui.core.schedules import Schedule, ScheduleSpec
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.screens.schedule_form import ScheduleForm
from workerpool_tui.tui.screens.schedules import SchedulesScreen

from .factory import T0, snapshot_app
from .harness import plain, until

SMALL = (80, 24)


def _app_with_schedules() -> DashboardApp:
    app = snapshot_app()
    sched = app.bridge._engine.scheduler  # type: ignore[attr-defined]
    rows = [
        (ScheduleSpec(name="nightly", type="default_task", cron="30 2 * * *"), "config"),
        (ScheduleSpec(name="tick", type="example_task", every=300.0), "api"),
        (ScheduleSpec(name="cleanup", type="default_task", every=3600.0, paused=True), "api"),
    ]
    for spec, source in rows:
        s = sched.schedules[spec.name] = Schedule(spec, source)
        s.next_run = T0 + 250.0
    sched.schedules["tick"].last_run = T0 - 50.0
    sched.schedules["tick"].last_task_id = "0004beef00000000"  # the seeded failed task
    return app


async def _open(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    screen = SchedulesScreen(
        app.bridge.schedules(), lambda: T0, lambda: ["default_task"], refresh_s=0
    )
    await app.push_screen(screen)
    await pilot.pause()
    while screen.polls < 1:
        await pilot.pause(0.01)


def test_schedules_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(_app_with_schedules(), terminal_size=SMALL, run_before=_open)


def test_schedule_form_80x24(snap_compare: Any) -> None:
    async def open_form(pilot: Pilot[Any]) -> None:
        await _open(pilot)
        form = ScheduleForm(["default_task"], lambda: T0, lambda t: True)
        await pilot.app.push_screen(form)
        await pilot.pause()
        for field in form.query(Input):  # a cursor caught mid-blink would differ
            field.cursor_blink = False
        await pilot.press(*"nightly", "tab", *"*/15 * * * *")
        preview = form.query_one("#schedule-preview", Static)
        await until(pilot, lambda: "Next runs" in plain(preview))

    assert snap_compare(_app_with_schedules(), terminal_size=SMALL, run_before=open_form)
