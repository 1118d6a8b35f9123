"""The dashboard at 80x24 and the small things a user sees: every field reachable, nothing
wrapped or cut, typed keys never lost, the footer's words, sorting and empty tables."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual import events
from textual.command import CommandPalette
from textual.renderables.sparkline import Sparkline as SparkLine
from textual.widgets import Button, Footer, Input, Select, TextArea

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.tui.app import WINDOW_ROWS
from workerpool_tui.tui.bridge import Bridge, Query, SortSpec
from workerpool_tui.tui.screens.help import HelpScreen
from workerpool_tui.tui.screens.submit import SubmitScreen
from workerpool_tui.tui.widgets.chart import Chart
from workerpool_tui.tui.widgets.log_panel import LogPanel
from workerpool_tui.tui.widgets.stats_bar import StatsBar
from workerpool_tui.tui.widgets.task_table import TaskTable

from .factory import seeded_engine
from .harness import live_app, long_task, plain, until

pytestmark = pytest.mark.anyio

SMALL = (80, 24)
FIELDS = (
    "submit-type",
    "submit-payload",
    "submit-priority",
    "submit-timeout",
    "submit-retries",
    "submit-count",
    "submit-ok",
    "submit-cancel",
)
"""The form's focus chain, in Tab order."""


def _footer_keys(footer: Footer) -> set[str]:
    return {str(getattr(child, "key", "")) for child in footer.children}


async def test_submit_form_fits_80x24_and_tab_reaches_every_field() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.resize_terminal(*SMALL)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, SubmitScreen)
        dialog = form.query_one("#submit-dialog")
        assert dialog.region.right <= SMALL[0] and dialog.region.bottom <= SMALL[1] - 1
        assert app.focused is form.query_one("#submit-type", Select)  # focus starts on type
        for field in FIELDS[1:]:
            await pilot.press("tab")
            focused = app.focused
            assert focused is not None and focused.id == field
            # On screen (the form scrolls to it), inside the dialog's border.
            await until(pilot, lambda f=focused: dialog.region.contains_region(f.region))
        # The footer shows the form's own keys, not the dashboard's.
        keys = _footer_keys(form.query_one(Footer))
        assert {"ctrl+s", "escape"} <= keys and "n" not in keys and "p" not in keys
        timeout = form.query_one("#submit-timeout", Input)
        assert timeout.content_size.width >= len(timeout.placeholder)  # placeholder not cut


async def test_keys_typed_right_after_n_are_not_lost() -> None:
    """A burst straight from the terminal: no key waits for the form to appear."""
    async with live_app() as (_engine, app, pilot):
        burst = ["n", *["tab"] * 5, "backspace", "3", "4", "5"]
        for key in burst:
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await until(pilot, lambda: app.screen.query_one("#submit-count", Input).value == "345")
        assert app.focused is app.screen.query_one("#submit-count", Input)
        assert app.query_one(TaskTable).shown_ids == []  # and no key reached the table


async def test_switching_type_replaces_an_untouched_payload_only() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.press("n")
        form = app.screen
        payload = form.query_one("#submit-payload", TextArea)
        select = form.query_one("#submit-type", Select)
        select.value = "long_running_task"
        await until(pilot, lambda: '"duration"' in payload.text)
        assert '"steps"' in payload.text
        payload.text = '{"duration": 1}'
        select.value = "default_task"
        await pilot.pause()
        assert payload.text == '{"duration": 1}'  # typed by the user: kept
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SubmitScreen))


async def test_80x24_log_panel_open_still_shows_rows_and_stats_bar_does_not_wrap() -> None:
    async with live_app() as (engine, app, pilot):
        await pilot.resize_terminal(*SMALL)
        await engine.submit_many([TaskSpec(type="default_task")] * 20)
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.row_count == 20)
        await pilot.press("l")
        log = app.query_one(LogPanel)
        await until(pilot, lambda: log.display and log.region.height > 0)
        assert table.content_size.height - 1 >= 3  # a header line and at least 3 rows
        assert table.region.bottom <= log.region.y
        bar = app.query_one(StatsBar)
        assert bar.line is not None
        width = bar.content_size.width
        console = Console(width=width, file=io.StringIO(), color_system=None)
        lines = console.render_lines(bar.render(), console.options, pad=False)
        assert len(lines) == 2  # two lines, neither wrapped
        text = "\n".join("".join(seg.text for seg in line) for line in lines)
        assert "Workers" in text and "Tasks" in text and "│\n" not in text


async def test_help_at_80x24_shows_the_keymap_hint_unmangled() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.resize_terminal(*SMALL)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        dialog = app.screen.query_one("#help-dialog")
        assert dialog.region.right <= SMALL[0]
        hint = app.screen.query_one(".hint")
        assert "under [keymap]: binding id = key" in str(hint.render())


async def test_footer_says_resume_while_paused() -> None:
    async with live_app() as (engine, app, pilot):
        footer = app.screen.query_one(Footer)

        def words() -> set[str]:
            return {str(getattr(c, "description", "")) for c in footer.children}

        await until(pilot, lambda: "Pause" in words())
        await pilot.press("p")
        assert engine.paused
        await until(pilot, lambda: "Resume" in words() and "Pause" not in words())
        await pilot.press("p")  # the same key resumes
        assert not engine.paused
        await until(pilot, lambda: "Pause" in words() and "Resume" not in words())
        engine.pause()  # paused from elsewhere (the API): the footer follows
        await until(pilot, lambda: "Resume" in words())


def test_status_sorts_in_lifecycle_order() -> None:
    engine, _ = seeded_engine()
    rows, _ = Bridge(engine).query(Query(sort=SortSpec("status", False), limit=100))
    order = list(TaskStatus)
    ranks = [order.index(t.status) for t in rows]
    assert ranks == sorted(ranks) and len(set(ranks)) > 2


async def test_empty_table_says_why() -> None:
    async with live_app() as (engine, app, pilot):
        table = app.query_one(TaskTable)
        await until(pilot, lambda: "no tasks yet" in table.empty_text)
        assert "press n" in table.empty_text
        assert "no tasks yet" in "".join(s.text for s in table.render_line(2))
        await engine.submit_many([long_task()] * 3)
        await until(pilot, lambda: table.row_count == 3)
        await pilot.press("5")  # failed: none
        assert table.empty_text == "0 of 3 match"


async def test_palette_quit_says_what_q_does() -> None:
    async with live_app() as (_engine, app, pilot):
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"quit")
        await pilot.pause(0.3)
        text = plain_palette(app.screen)
        assert "as soon as possible" not in text
        assert "Let running tasks finish" in text


def plain_palette(screen: object) -> str:
    from textual.command import CommandList

    assert isinstance(screen, CommandPalette)
    options = screen.query_one(CommandList)
    return "\n".join(
        str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
    )


def test_count_charts_start_at_zero() -> None:
    chart = Chart("Workers", "workers")
    chart.watch_data((8.0,) * 200)  # a steady 8 for longer than the chart's span
    data = chart._spark.data or []
    assert min(data) == 0
    console = Console(width=20, file=io.StringIO(), color_system=None)
    [line] = console.render_lines(SparkLine(data, width=20), console.options)
    assert "".join(s.text for s in line) == "█" * 20  # a full bar, not nothing


_ = (Button, plain)


async def test_table_is_a_window_over_the_whole_list() -> None:
    """End, PgDn and the wheel reach the oldest task, far past the rows the table holds."""
    async with live_app(min_workers=0, max_workers=1) as (engine, app, pilot):
        engine.pause()
        tasks = await engine.submit_many([TaskSpec(type="default_task")] * 450)
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.highlighted_id == tasks[-1].id)
        assert table.row_count <= WINDOW_ROWS < len(tasks)
        await pilot.press("end")
        await until(pilot, lambda: table.highlighted_id == tasks[0].id)  # the oldest
        assert table.row_count <= WINDOW_ROWS
        assert str(table.border_subtitle).endswith("-450 of 450")
        await pilot.press("home")
        await until(pilot, lambda: table.highlighted_id == tasks[-1].id)
        assert str(table.border_subtitle).startswith("rows 1-")
        for _ in range(12):  # page by page, through several windows
            await pilot.press("pagedown")
        page = table.content_size.height - 1
        await until(pilot, lambda: table.highlighted_id == tasks[-1 - 12 * page].id)
        assert str(table.border_subtitle).endswith("of 450")
