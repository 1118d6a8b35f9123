"""Every key and form of the dashboard, driven through Pilot over a real running engine."""

from __future__ import annotations

import asyncio

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import Button, Input, Label, Select, TextArea
from textual.widgets._footer import FooterKey

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.tui.screens.confirm import ConfirmScreen
from workerpool_tui.tui.screens.detail import DetailScreen
from workerpool_tui.tui.screens.help import HelpScreen
from workerpool_tui.tui.screens.resize import ResizeScreen
from workerpool_tui.tui.screens.shutdown import ShutdownScreen
from workerpool_tui.tui.screens.submit import SubmitScreen
from workerpool_tui.tui.widgets.log_panel import LogPanel
from workerpool_tui.tui.widgets.stats_bar import StatsBar
from workerpool_tui.tui.widgets.task_table import TaskTable

from .harness import live_app, long_task, plain, status_of, until

pytestmark = pytest.mark.anyio


async def test_table_follows_the_engine() -> None:
    async with live_app() as (engine, app, pilot):
        tasks = await engine.submit_many(
            [TaskSpec(type="default_task", payload={"n": i}) for i in range(30)]
        )
        table = app.query_one(TaskTable)
        await until(pilot, lambda: all(t.status is TaskStatus.COMPLETED for t in tasks))
        await until(pilot, lambda: table.row_count == 30)
        # Newest first, every row keyed by its task id.
        assert table.shown_ids == [t.id for t in reversed(tasks)]
        await until(pilot, lambda: "completed" in str(table.get_row(tasks[0].id)[2]))
        bar = app.query_one(StatsBar)
        await until(pilot, lambda: bar.line is not None and bar.line.stats.tasks.completed == 30)
        assert "API off: not started" in str(bar.render())


async def test_submit_form_valid_with_count() -> None:
    async with live_app() as (engine, app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        form = app.screen
        assert isinstance(form, SubmitScreen)
        form.query_one("#submit-payload", TextArea).text = '{"sleep": 0.01}'
        form.query_one("#submit-count", Input).value = "7"
        form.query_one("#submit-priority", Input).value = "3"
        form.query_one("#submit-timeout", Input).value = "20s"
        await pilot.pause()
        assert form.request is not None
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(engine.registry) == 7)
        tasks, _ = await engine.list_tasks(limit=10)
        assert {t.type for t in tasks} == {"default_task"}
        assert {t.priority for t in tasks} == {3}
        assert {t.timeout_s for t in tasks} == {20.0}
        assert tasks[0].payload == {"sleep": 0.01}
        assert not isinstance(app.screen, SubmitScreen)


async def test_submit_form_invalid_input_sends_nothing() -> None:
    async with live_app() as (engine, app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        form = app.screen
        payload = form.query_one("#submit-payload", TextArea)
        error = form.query_one("#submit-payload-error", Label)
        ok = form.query_one("#submit-ok", Button)

        payload.text = '{"sleep": '
        await pilot.pause()
        assert "invalid JSON" in str(error.render())
        assert ok.disabled

        payload.text = "[1, 2]"
        await pilot.pause()
        assert "must be a JSON object" in str(error.render())

        payload.text = '{"sleep": -1}'
        await pilot.pause()
        assert "`float` >= 0.0 - at `$.sleep`" in str(error.render())

        payload.text = "{}"
        form.query_one("#submit-count", Input).value = "0"
        form.query_one("#submit-timeout", Input).value = "soon"
        await pilot.pause()
        fields = str(form.query_one("#submit-fields-error", Label).render())
        assert "count must be between 1" in fields
        assert "timeout" in fields
        assert ok.disabled
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SubmitScreen)  # still open
        assert len(engine.registry) == 0  # nothing sent

        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SubmitScreen))
        assert len(engine.registry) == 0


async def test_cancel_with_and_without_confirmation() -> None:
    async with live_app() as (engine, app, pilot):
        [task] = await engine.submit_many([long_task()])
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.RUNNING)
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.highlighted_id == task.id)

        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert status_of(engine, task.id) is TaskStatus.RUNNING

        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.CANCELLED)
        await until(pilot, lambda: "cancelled" in str(table.get_row(task.id)[2]))

        # A final task is not cancelled again: no dialog, a warning instead.
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)


async def test_filter_keys_and_tabs() -> None:
    async with live_app() as (engine, app, pilot):
        done = await engine.submit_many([TaskSpec(type="default_task")] * 3)
        running = await engine.submit_many([long_task()] * 2)
        await until(
            pilot, lambda: all(status_of(engine, t.id) is TaskStatus.COMPLETED for t in done)
        )
        await until(
            pilot, lambda: all(status_of(engine, t.id) is TaskStatus.RUNNING for t in running)
        )
        table = app.query_one(TaskTable)
        await pilot.press("3")
        assert sorted(table.shown_ids) == sorted(t.id for t in running)
        await pilot.press("4")
        assert sorted(table.shown_ids) == sorted(t.id for t in done)
        await pilot.press("5")
        assert table.shown_ids == []
        await pilot.press("1")
        assert len(table.shown_ids) == 5
        await pilot.click("#filter-running")
        await until(pilot, lambda: sorted(table.shown_ids) == sorted(t.id for t in running))


async def test_search_and_clear() -> None:
    async with live_app() as (engine, app, pilot):
        tasks = await engine.submit_many([TaskSpec(type="default_task")] * 4)
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.row_count == 4)
        target = tasks[2].id
        await pilot.press("slash")
        search = app.query_one("#search", Input)
        assert search.display and search.has_focus
        await pilot.press(*target[:10], "enter")
        await until(pilot, lambda: table.shown_ids == [target])
        assert table.has_focus
        await pilot.press("escape")
        await until(pilot, lambda: len(table.shown_ids) == 4)
        assert not search.display


async def test_sort_keys_and_header_click() -> None:
    async with live_app() as (engine, app, pilot):
        await engine.submit_many([TaskSpec(type="default_task", priority=p) for p in (1, 5, 3)])
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.row_count == 3)
        prio = lambda: [int(str(table.get_row(tid)[4])) for tid in table.shown_ids]  # noqa: E731
        await pilot.click("TaskTable", offset=(61, 1))  # the Prio header
        await until(pilot, lambda: prio() == [5, 3, 1])
        await pilot.press("o")
        assert prio() == [1, 3, 5]
        assert app.query_state.sort.column == "priority"
        await pilot.press("s")
        assert app.query_state.sort.column == "worker"


async def test_detail_view_live_and_submit_again() -> None:
    async with live_app() as (engine, app, pilot):
        [task] = await engine.submit_many(
            [TaskSpec(type="long_running_task", payload={"duration": 60, "steps": 600})]
        )
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.highlighted_id == task.id)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.task_id == task.id
        await until(pilot, lambda: "running" in plain(screen.query_one("#detail-summary")))
        assert '"duration": 60' in plain(screen.query_one("#detail-payload"))
        from textual.widgets import ProgressBar

        bar = screen.query_one(ProgressBar)
        first = bar.progress
        await until(pilot, lambda: bar.progress > first)  # live progress

        await pilot.press("r")
        await until(pilot, lambda: len(engine.registry) == 2)
        again = next(t for t in engine.registry.active() if t.id != task.id)
        assert again.retry_of == task.id and again.payload == task.payload

        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.CANCELLED)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await until(pilot, lambda: "cancelled" in plain(screen.query_one("#detail-summary")))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen))


async def test_detail_shows_error_and_traceback() -> None:
    async with live_app() as (engine, app, pilot):
        [task] = await engine.submit_many([TaskSpec(type="default_task", payload={"fail": True})])
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.FAILED)
        app.open_task(task.id)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await until(pilot, lambda: "DemoFailure" in plain(app.screen.query_one("#detail-outcome")))
        outcome = app.screen.query_one("#detail-outcome")
        assert "Traceback (most recent call last)" in plain(outcome)
        assert outcome.border_title == "Error"
        assert '"fail": true' in plain(app.screen.query_one("#detail-payload"))


async def test_a_tick_during_shutdown_leaves_the_detail_screen_alone() -> None:
    """The tick timer runs its callback in a task of its own, so it can fire while the app
    closes its screens (widgets of the open detail screen already gone): it must draw nothing.
    The race is made certain here by ticking between every step of that closing."""
    ticks_during_close: list[None] = []
    async with live_app() as (engine, app, pilot):
        [task] = await engine.submit_many([TaskSpec(type="default_task", payload={"fail": True})])
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.FAILED)
        app.open_task(task.id)
        await until(pilot, lambda: "DemoFailure" in plain(app.screen.query_one("#detail-outcome")))
        close_all = app._close_all

        async def close_all_while_ticking() -> None:
            closing = asyncio.ensure_future(close_all())
            while not closing.done():
                app._tick()
                app._apply_now()
                ticks_during_close.append(None)
                await asyncio.sleep(0)
            await closing

        app._close_all = close_all_while_ticking  # type: ignore[method-assign]
    assert ticks_during_close  # the ticks did run while the screens closed


async def test_pause_and_resume() -> None:
    async with live_app() as (engine, app, pilot):
        await pilot.press("p")
        assert engine.paused
        bar = app.query_one(StatsBar)
        assert "PAUSED" in str(bar.render())
        [task] = await engine.submit_many([TaskSpec(type="default_task")])
        await pilot.pause(0.1)
        assert status_of(engine, task.id) is TaskStatus.PENDING
        await pilot.press("p")
        assert not engine.paused
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.COMPLETED)


async def test_pausing_changes_the_footer_word_in_place() -> None:
    """Pause <-> Resume is one word: the footer's keys stay the same widgets (a rebuild
    of all of them stalled the loop 75 ms and more), and they say the right word."""
    async with live_app() as (engine, app, pilot):

        def words() -> list[str]:
            return [k.description for k in app.screen.query(FooterKey)]

        await until(pilot, lambda: "Pause" in words())
        keys = list(app.screen.query(FooterKey))
        await pilot.press("p")
        await until(pilot, lambda: "Resume" in words() and "Pause" not in words())
        await pilot.press("p")
        await until(pilot, lambda: "Pause" in words() and "Resume" not in words())
        assert list(app.screen.query(FooterKey)) == keys
        await pilot.press("p")  # the key a user presses acts on the word it shows
        await until(pilot, lambda: engine.paused)


async def test_resize_keys_and_form() -> None:
    async with live_app() as (engine, app, pilot):
        await pilot.press("plus")
        assert engine.pool_state().min == 3 and engine.pool_state().current == 3
        await pilot.press("minus", "minus")
        assert engine.pool_state().min == 1

        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, ResizeScreen))
        form = app.screen
        form.query_one("#resize-min", Input).value = "9"
        form.query_one("#resize-max", Input).value = "6"
        await pilot.pause()
        assert "must not exceed" in str(form.query_one("#resize-error", Label).render())
        assert form.query_one("#resize-ok", Button).disabled
        form.query_one("#resize-min", Input).value = "3"
        form.query_one("#resize-max", Input).value = "6"
        await pilot.pause()
        await pilot.click("#resize-ok")
        await until(pilot, lambda: engine.pool_state().max == 6)
        assert engine.pool_state().min == 3


async def test_help_lists_every_binding_and_palette_has_every_action() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = app.key_rows()
        ids = {row[3] for row in rows}
        for binding in app.BINDINGS:
            assert binding.id in ids  # type: ignore[union-attr]
        await until(pilot, lambda: bool(app.screen.query("#help-table")))
        text = plain(app.screen.query_one("#help-table"))
        assert "Submit tasks" in text and "task.open" in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))

        titles = [title for title, _, _ in app.palette_commands()]
        for needed in (
            "Submit tasks",
            "Cancel highlighted task",
            "Pause / resume dispatch",
            "Resize the pool",
            "Toggle log panel",
            "Help: keys",
            "Quit",
            "Filter: Failed",
        ):
            assert needed in titles


async def test_command_palette_runs_an_action() -> None:
    async with live_app() as (engine, app, pilot):
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"pause / resume")
        results = app.screen.query_one(CommandList)
        await until(
            pilot,
            lambda: (
                results.option_count > 0
                and "Pause / resume" in str(results.get_option_at_index(0).prompt)
            ),
        )
        await pilot.press("down", "enter")
        await until(pilot, lambda: engine.paused)


async def test_log_panel_toggle_and_theme() -> None:
    async with live_app() as (_engine, app, pilot):
        panel = app.query_one(LogPanel)
        assert not panel.display
        await pilot.press("l")
        assert panel.display
        await pilot.press("p")  # logs "dispatch paused" through the bus
        await until(pilot, lambda: any("paused" in str(line.text) for line in panel.lines))
        await pilot.press("l")
        assert not panel.display
        dark = app.current_theme.dark
        await pilot.press("t")
        assert app.current_theme.dark is not dark


async def test_keymap_overrides_bindings() -> None:
    async with live_app(keymap={"submit": "ctrl+n", "nonsense": "x"}) as (_engine, app, pilot):
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, SubmitScreen)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        [row] = [row for row in app.key_rows() if row[3] == "submit"]
        assert row[1] != "n"


async def test_quit_waits_for_running_tasks_then_cancels_on_second_press() -> None:
    async with live_app(shutdown_timeout="30s") as (engine, app, pilot):
        [task] = await engine.submit_many([long_task()])
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.RUNNING)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ShutdownScreen))
        screen = app.screen
        assert isinstance(screen, ShutdownScreen)
        await until(pilot, lambda: "Waiting for 1 running task" in screen.status)
        assert task.id in screen.status
        await until(pilot, lambda: task.id in plain(screen.query_one("#shutdown-status")))
        assert engine.paused
        await pilot.press("q")
        await until(pilot, lambda: status_of(engine, task.id) is TaskStatus.CANCELLED)
        await until(pilot, lambda: app.return_code == 0)


async def test_quit_with_nothing_running_exits_at_once() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.press("q")
        await until(pilot, lambda: app.return_code == 0)


async def test_submit_form_shows_a_types_limits() -> None:
    async with live_app() as (engine, app, pilot):
        engine.gates.update("default_task", concurrency=3, rate_limit="10/s", paused=True)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        form = app.screen
        assert isinstance(form, SubmitScreen)
        await pilot.pause()
        text = plain(form.query_one("#submit-type-help"))
        assert form.query_one("#submit-type", Select).value == "default_task"  # the first
        assert "running 0/3 · rate 10/s · paused" in text
