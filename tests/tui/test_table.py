"""The task table's drawing: exact row widths, and only changed lines redrawn."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from rich.style import Style

from workerpool_tui.core import TaskStatus
from workerpool_tui.core.bus import TaskEvent
from workerpool_tui.core.models import EventKind
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.bridge import Bridge
from workerpool_tui.tui.widgets.cells import progress_parts
from workerpool_tui.tui.widgets.task_rows import ROW_WIDTH, row_strip
from workerpool_tui.tui.widgets.task_table import TaskTable

from .factory import frozen_stats, seeded_engine
from .harness import SIZE

STATUS = Style(bold=True)


@pytest.mark.parametrize(
    "type_name, message",
    [
        ("default_task", "step 4/10"),
        ("日本語_task_✓", "wide 日本 text"),
        ("default_task", "two\nlines\tand a bell \x07"),
    ],
)
@pytest.mark.parametrize("width", [ROW_WIDTH - 20, ROW_WIDTH, ROW_WIDTH + 7])
def test_row_line_is_exactly_the_width_and_colours_the_status(
    type_name: str, message: str, width: int
) -> None:
    cells = ("abcd1234", type_name, "running", progress_parts(40), "5", "run 1s", "3", message)
    strip = row_strip(cells, Style(), STATUS, width)
    text = "".join(seg.text for seg in strip)
    assert strip.cell_length == width
    assert cell_len(text) == width
    assert text.isprintable()  # no control character reaches the terminal
    coloured = "".join(seg.text for seg in strip if seg.style == STATUS)
    assert coloured.split() == ["running", "━━━━"]  # the status, the filled part of the bar


@pytest.mark.anyio
async def test_one_changed_task_redraws_one_line() -> None:
    engine, _ = seeded_engine()
    bridge = Bridge(engine, stats_fn=frozen_stats(engine))
    app = DashboardApp(engine, bridge=bridge, freeze_timing=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(TaskTable)
        running = next(t for t in engine.registry.newest() if t.status is TaskStatus.RUNNING)
        assert running.id in table.shown_ids
        before = table.lines_refreshed

        running.progress = 90.0
        engine.bus.publish(TaskEvent(EventKind.PROGRESS, running))
        app._apply_now()
        assert table.lines_refreshed == before + 1
        assert "90%" in table.get_row(running.id)[3]

        app._apply_now()  # nothing changed: nothing redrawn
        assert table.lines_refreshed == before + 1
        await pilot.pause()


@pytest.mark.anyio
async def test_in_cluster_mode_a_changed_row_keeps_its_instance() -> None:
    engine, _ = seeded_engine()
    bridge = Bridge(engine, stats_fn=frozen_stats(engine))
    app = DashboardApp(engine, bridge=bridge, freeze_timing=True)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(TaskTable)
        table.cluster = True  # as on_mount sets it over a shared store
        running = next(t for t in engine.registry.newest() if t.status is TaskStatus.RUNNING)
        running.instance = "alpha"
        app._window_dirty = True
        app._apply_now()
        await pilot.pause()
        assert table.get_row(running.id)[-1].startswith("alpha ")  # drawn fresh
        running.progress, running.message = 90.0, "step 90/100"
        engine.bus.publish(TaskEvent(EventKind.PROGRESS, running))
        app._apply_now()
        assert table.get_row(running.id)[-1].split() == ["alpha", "step", "90/100"]  # patched
