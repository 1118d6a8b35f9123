"""The Schedules screen (``S``) and its add form, driven through Pilot over a real engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static

from workerpool_tui.core import Engine
from workerpool_tui.core.schedules import ScheduleSpec
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.screens.confirm import ConfirmScreen
from workerpool_tui.tui.screens.schedule_form import ScheduleForm, build_spec, preview
from workerpool_tui.tui.screens.schedules import SchedulesScreen

from .factory import make_config
from .harness import SIZE, plain, until

pytestmark = pytest.mark.anyio

NIGHTLY = {"name": "nightly", "type": "default_task", "cron": "30 2 * * *"}


@asynccontextmanager
async def schedules_app() -> AsyncIterator[tuple[Engine, DashboardApp, Pilot[int]]]:
    cfg = make_config(
        worker={"min_workers": 1, "max_workers": 1, "enable_auto_scaling": False},
        schedule=[NIGHTLY],
    )
    async with Engine(cfg) as engine:
        with anyio.fail_after(5):
            await engine.scheduler.ready.wait()
        await engine.scheduler.add(ScheduleSpec(name="tick", type="default_task", every=3600.0))
        app = DashboardApp(engine)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("S")
            await until(pilot, lambda: isinstance(app.screen, SchedulesScreen))
            screen = app.screen
            assert isinstance(screen, SchedulesScreen)
            await until(pilot, lambda: screen.polls >= 1)
            yield engine, app, pilot


def _row(app: DashboardApp, n: int) -> list[str]:
    return [str(c) for c in app.screen.query_one(DataTable).get_row_at(n)]


async def test_lists_schedules_with_countdown_and_refuses_to_change_config_ones() -> None:
    async with schedules_app() as (engine, app, pilot):
        assert _row(app, 0)[:2] == ["nightly", "30 2 * * *"]
        assert _row(app, 0)[2].startswith("in ") and _row(app, 0)[6] == "config"
        assert _row(app, 1)[:2] == ["tick", "every 1h00m"] and _row(app, 1)[6] == "api"
        before = _row(app, 1)[2]
        screen = app.screen
        assert isinstance(screen, SchedulesScreen)
        polls = screen.polls
        await until(pilot, lambda: screen.polls > polls + 1)  # live: counting down
        assert _row(app, 1)[2] != before
        await pilot.press("p")  # on nightly: read-only
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert not engine.scheduler.get("nightly").spec.paused
        assert any("configuration file" in n.message for n in app._notifications)


async def test_pause_resume_run_now_and_delete() -> None:
    async with schedules_app() as (engine, app, pilot):
        sched = engine.scheduler
        await pilot.press("down", "p")
        await until(pilot, lambda: sched.get("tick").spec.paused)
        await until(pilot, lambda: _row(app, 1)[5] == "paused" and _row(app, 1)[2] == "-")
        await pilot.press("p")
        await until(pilot, lambda: not sched.get("tick").spec.paused)
        await pilot.press("r")
        await until(pilot, lambda: sched.get("tick").last_task_id is not None)
        await until(pilot, lambda: _row(app, 1)[4] in ("pending", "running", "completed"))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: "tick" not in sched.schedules)
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SchedulesScreen))


async def test_add_form_checks_the_rule_as_you_type_and_adds() -> None:
    async with schedules_app() as (engine, app, pilot):
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        await pilot.press(*"every5")
        form.query_one("#schedule-rule", Input).focus()
        await pilot.press(*"*/5 * *")
        await until(pilot, lambda: "✗" in plain(form.query_one("#schedule-preview", Static)))
        await pilot.press(*" * *")
        await until(
            pilot, lambda: "Next runs" in plain(form.query_one("#schedule-preview", Static))
        )
        assert plain(form.query_one("#schedule-preview", Static)).count(":00") >= 5
        form.query_one("#schedule-type", Input).value = "no_such_type"
        await pilot.press("enter")
        await until(
            pilot, lambda: "unknown task type" in plain(form.query_one("#schedule-error", Label))
        )
        assert "every5" not in engine.scheduler.schedules
        form.query_one("#schedule-type", Input).value = "default_task"
        await pilot.press("enter")
        await until(pilot, lambda: "every5" in engine.scheduler.schedules)
        assert engine.scheduler.get("every5").spec.cron == "*/5 * * * *"
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 3)


def test_form_helpers_take_a_duration_or_a_cron_and_name_the_bad_field() -> None:
    assert build_spec("a", "5m", "t", "", "UTC").every == 300.0
    assert build_spec("a", "0 * * * *", "t", '{"n": 1}', "").payload == {"n": 1}
    for args, word in [
        (("a", "nope", "t", "", "UTC"), "cron"),
        (("a", "5m", "t", "[1]", "UTC"), "payload"),
        (("a", "5m", "t", "{", "UTC"), "payload"),
        (("a b", "5m", "t", "", "UTC"), "name"),
        (("a", "5m", "t", "", "Mars/Base"), "timezone"),
    ]:
        with pytest.raises(ValueError, match=word):
            build_spec(*args)
    assert preview("0 12 * * *", "UTC", 0.0).startswith("Next runs (UTC): 01-01 12:00:00")


async def test_add_form_keeps_keys_typed_in_a_burst_in_order() -> None:
    """Straight from the terminal: Tab and Backspace act where they were typed, not after
    the characters behind them (the submit form's rule, issue #10)."""
    async with schedules_app() as (_engine, app, pilot):
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        burst = [*"tickx", "backspace", "tab", *"*/5 * * * *"]
        for key in burst:
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        rule = form.query_one("#schedule-rule", Input)
        await until(pilot, lambda: rule.value == "*/5 * * * *")
        assert form.query_one("#schedule-name", Input).value == "tick"
