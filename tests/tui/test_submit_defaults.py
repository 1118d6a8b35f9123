"""The submit form shows the chosen type's defaults and uses them for empty fields (#13)."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select

from workerpool_tui.core import Engine
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.screens.submit import SubmitScreen

from .factory import make_config
from .harness import SIZE, plain, until

pytestmark = pytest.mark.anyio

TYPES = {"default_task": {"priority": 7, "timeout": "45s", "max_retries": 2}}


def _placeholders(form: SubmitScreen) -> tuple[str, str, str]:
    return (
        form.query_one("#submit-priority", Input).placeholder,
        form.query_one("#submit-timeout", Input).placeholder,
        form.query_one("#submit-retries", Input).placeholder,
    )


async def test_empty_fields_take_the_types_defaults_and_typed_ones_win() -> None:
    config = make_config(
        task={"types": TYPES, "default_task_timeout": "1m", "default_max_retries": 1},
        worker={"min_workers": 1, "max_workers": 1, "enable_auto_scaling": False},
    )
    async with Engine(config) as engine:
        engine.pause()  # the tasks stay pending: the test reads what they were given
        app = DashboardApp(engine)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
            form = app.screen
            assert isinstance(form, SubmitScreen)
            form.query_one("#submit-type", Select).value = "default_task"
            await until(pilot, lambda: _placeholders(form) == ("7", "45.0s", "2"))
            assert "defaults: priority 7 · timeout 45.0s · max retries 2" in plain(
                form.query_one("#submit-type-help")
            )
            # another type has none of its own: [task]'s defaults (priority 0)
            form.query_one("#submit-type", Select).value = "example_task"
            await until(pilot, lambda: _placeholders(form) == ("0", "1m00s", "1"))
            form.query_one("#submit-type", Select).value = "default_task"
            await until(pilot, lambda: _placeholders(form) == ("7", "45.0s", "2"))
            await pilot.press("ctrl+s")
            await until(pilot, lambda: len(engine.registry) == 1)
            (task,) = [t for t in engine.registry.active()]
            assert (task.priority, task.timeout_s, task.max_retries) == (7, 45.0, 2)

            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
            form = app.screen
            assert isinstance(form, SubmitScreen)
            await until(pilot, lambda: _placeholders(form) == ("7", "45.0s", "2"))
            form.query_one("#submit-priority", Input).value = "-3"
            form.query_one("#submit-retries", Input).value = "0"
            await pilot.pause()
            await pilot.press("ctrl+s")
            await until(pilot, lambda: len(engine.registry) == 2)
            newest = max(engine.registry.active(), key=lambda t: t.seq)
            assert (newest.priority, newest.timeout_s, newest.max_retries) == (-3, 45.0, 0)
