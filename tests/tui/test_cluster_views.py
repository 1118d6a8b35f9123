"""The Instances (``I``) and Workers (``W``) screens, the degraded mark and the fatal exit,
driven through Pilot over a real running engine."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from workerpool_tui.core import TaskStatus
from workerpool_tui.core.instance_view import InstanceInfo
from workerpool_tui.tui.cluster_views import EXIT_FATAL
from workerpool_tui.tui.screens.detail import DetailScreen
from workerpool_tui.tui.screens.help import HelpScreen
from workerpool_tui.tui.screens.instances import InstancesScreen
from workerpool_tui.tui.screens.workers import WorkersScreen

from .harness import live_app, long_task, plain, status_of, until

pytestmark = pytest.mark.anyio


async def test_instances_screen_outside_a_cluster_shows_this_instance_and_says_so() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.press("I")
        await until(pilot, lambda: isinstance(app.screen, InstancesScreen))
        screen = app.screen
        assert isinstance(screen, InstancesScreen)
        await until(pilot, lambda: screen.polls >= 1)
        assert "Not in cluster mode: this instance only" in plain(
            screen.query_one("#instances-summary", Static)
        )
        table = screen.query_one(DataTable)
        assert table.row_count == 1
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0].endswith(" *") and row[4] == "2 / 0 busy" and row[7] == "running"
        polls = screen.polls
        await until(pilot, lambda: screen.polls > polls)  # live: it polls again
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, InstancesScreen))


async def test_workers_screen_is_live_and_enter_opens_the_workers_task() -> None:
    async with live_app() as (engine, app, pilot):
        await pilot.press("W")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen))
        screen = app.screen
        assert isinstance(screen, WorkersScreen)
        assert [w.state for w in screen.rows] == ["idle", "idle"]
        await pilot.press("enter")  # an idle worker has no task: a warning, no detail
        await pilot.pause()
        assert isinstance(app.screen, WorkersScreen)

        task = await engine.submit(long_task())
        await until(pilot, lambda: any(w.task_id == task.id for w in screen.rows))
        busy = next(i for i, w in enumerate(screen.rows) if w.task_id == task.id)
        table = screen.query_one(DataTable)
        table.move_cursor(row=busy)
        assert str(table.get_row_at(busy)[1]) == "busy"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        detail = app.screen
        assert isinstance(detail, DetailScreen) and detail.task_id == task.id
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await engine.cancel(task.id, wait_s=5)
        assert status_of(engine, task.id) is TaskStatus.CANCELLED
        await until(pilot, lambda: all(w.task_id is None for w in screen.rows))


async def test_degraded_engine_marks_the_header_until_it_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with live_app() as (engine, app, pilot):
        reason: list[str | None] = ["PostgreSQL: connection refused (reconnecting)"]
        monkeypatch.setattr(engine, "degraded", lambda: reason[0])
        await until(pilot, lambda: app.sub_title.startswith("DEGRADED: PostgreSQL"))
        reason[0] = None
        await until(pilot, lambda: "DEGRADED" not in app.sub_title)


async def test_a_fatal_engine_failure_ends_the_dashboard_with_its_reason() -> None:
    async with live_app() as (engine, app, pilot):
        engine.report_fatal("engine janitor failed: OSError: disk gone")
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == EXIT_FATAL
    assert app.fatal_error == "engine janitor failed: OSError: disk gone"


async def test_help_and_palette_list_the_new_screens() -> None:
    async with live_app() as (_engine, app, pilot):
        ids = {row[3] for row in app.key_rows()}
        assert {"instances", "workers", "instances.back", "workers.open"} <= ids
        assert {"Instances", "Workers"} <= {c[0] for c in app.palette_commands()}
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_i_and_w_switch_between_the_two_screens_and_hide_the_main_keys() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.press("W")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen))
        assert app.check_action("submit", ()) is False  # not in this screen's footer
        assert app.check_action("help", ()) is True
        await pilot.press("I")
        await until(pilot, lambda: isinstance(app.screen, InstancesScreen))
        assert len(app.screen_stack) == 2  # replaced, not stacked
        await pilot.press("I")  # I again: back to the task list
        await until(pilot, lambda: len(app.screen_stack) == 1)
        assert app.check_action("submit", ()) is True


async def test_instances_screen_says_when_the_store_cannot_answer_and_recovers() -> None:
    answers: list[Exception | None] = [OSError("connection refused"), None]

    async def fetch() -> tuple[list[InstanceInfo], bool]:
        failure = answers.pop(0) if len(answers) > 1 else answers[0]
        if failure is not None:
            raise failure
        return [], True

    async with live_app() as (_engine, app, pilot):
        screen = InstancesScreen(fetch, refresh_s=0.05)
        await app.push_screen(screen)
        summary = screen.query_one("#instances-summary", Static)
        await until(pilot, lambda: "cannot read the instances now" in plain(summary))
        await until(pilot, lambda: screen.polls >= 1)  # the next poll answers
        assert plain(summary).startswith("Cluster: 0 instances")
