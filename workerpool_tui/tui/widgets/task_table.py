"""The task table: a window of keyed rows, patched cell by cell, drawn with the Line API.

The table never holds more than the window the app gives it: rows ``offset`` to
``offset + limit`` of every task that matches the filter, in order. Moving the cursor past
them (PgDn, End, the wheel) asks the app for the window around the new position, so every
task can be reached; the subtitle counts rows in the whole list (``rows 401-435 of
100,000``). Each tick it removes rows that left the window, adds the ones
that entered, and replaces only the cells whose text changed; a changed row drops its
cached line, every other row keeps it. Columns have fixed widths, so nothing is ever
measured. Only the lines on screen are drawn (``render_line``), each from a cache of
ready-made segments, so a repaint costs microseconds a row.

Why not ``DataTable``: measured under load (``bench/dashboard.py``), every
``update_cell`` there invalidates the render cache of all rows and each cell is
rendered through Rich (~0.5 ms a cell), which cost the engine two thirds of its
throughput at 12 refreshes a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...core import Task
from .task_rows import _DIM, HEADER, HEADER_CLUSTER, Cells, column_at, row_strip, status_styles
from .task_window import RowWindow


class TaskTable(ScrollView, can_focus=True):
    """Keyed rows (key = task id) showing one window of tasks; a fixed header line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", tooltip="Open the highlighted task", id="task.open"),
        Binding("up", "cursor(-1)", "Up", show=False, id="task.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="task.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="task.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="task.page_down"),
        Binding("home", "edge(0)", "First row", show=False, id="task.first"),
        Binding("end", "edge(1)", "Last row", show=False, id="task.last"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "task-table--header",
        "task-table--cursor",
        "task-table--zebra",
    }

    DEFAULT_CSS = """
    TaskTable {
        height: 1fr;
        background: $surface;
    }
    TaskTable > .task-table--header {
        text-style: bold;
        background: $panel;
    }
    TaskTable > .task-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    TaskTable:blur > .task-table--cursor {
        background: $block-cursor-blurred-background;
        text-style: none;
    }
    TaskTable > .task-table--zebra {
        background: $surface-lighten-1;
    }
    """

    cursor_row: reactive[int] = reactive(0, repaint=False)
    """Index of the highlighted row."""

    class Opened(Message):
        """Enter (or a click on the highlighted row) on a task."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    class WindowNeeded(Message):
        """The cursor went past the rows held: the app fetches rows around ``row``."""

        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row
            """Position in the whole filtered, sorted list (0: its first row)."""

    class HeaderClicked(Message):
        """A column header was clicked (the app sorts by it)."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows = RowWindow()
        self._strips: dict[str, tuple[int, list[Strip | None]]] = {}
        """Each row's finished line by task id: ``(width, [even, odd])``."""
        self._pen: _Pen | None = None
        self._width = 0
        self._status_styles: dict[str, Style] = {}
        self._cursor_id: str | None = None
        self._top = 0
        """First row on screen. The table scrolls itself: a virtual size would make every
        change in the row count a layout pass of the whole screen."""
        self._subtitle = ""
        self._shown: list[tuple[str, bool]] = []
        """What each row line on screen shows: ``(task id, has the cursor)``."""
        self._empty_text = ""
        self._wanted: int | None = None
        """A position asked for (WindowNeeded): the cursor goes there once rows come."""
        self.lines_refreshed = 0
        """Row lines asked to be redrawn so far (benches read it)."""
        self.marked: frozenset[str] = frozenset()
        """Tasks marked for a bulk action (``space``): their id shows a ``●``."""

    def on_mount(self) -> None:
        self.use_theme()

    # ------------------------------------------------------------------ data
    @property
    def cluster(self) -> bool:
        """Cluster mode: each row names the instance that runs (or ran) its task."""
        return self._rows.cluster

    @cluster.setter
    def cluster(self, cluster: bool) -> None:
        self._rows.cluster = cluster

    @property
    def row_count(self) -> int:
        return len(self._rows.order)

    @property
    def shown_ids(self) -> list[str]:
        return list(self._rows.order)

    @property
    def highlighted_id(self) -> str | None:
        return self._cursor_id

    def get_row(self, task_id: str) -> Cells:
        return self._rows.row(task_id)

    @property
    def empty_text(self) -> str:
        """What the table says when it has no rows (why it is empty)."""
        return self._empty_text

    @empty_text.setter
    def empty_text(self, text: str) -> None:
        if text != self._empty_text:
            self._empty_text = text
            if not self._rows.order:
                self.refresh()

    def _shown_row(self, task_id: str) -> Cells:
        cells = self.get_row(task_id)
        if task_id in self.marked:
            return ("●" + cells[0][:-1], *cells[1:])
        return cells

    def set_marked(self, marked: frozenset[str]) -> None:
        """Show these tasks as marked (their lines are drawn again)."""
        toggled = marked ^ self.marked
        self.marked = marked
        for tid in toggled:
            self._strips.pop(tid, None)
        self._shown = []  # every line is compared afresh
        self._repaint(toggled)

    def use_theme(self) -> None:
        """Take the status colours from the current theme (again on a theme change)."""
        self._status_styles = status_styles(self.app.current_theme)
        self._pen = None
        self._strips.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._pen = None
        self._strips.clear()

    def show(
        self,
        tasks: list[Task],
        now: float,
        *,
        changed: Iterable[str] | None,
        refresh_times: bool,
        offset: int = 0,
        total: int | None = None,
    ) -> None:
        """Make the table show ``tasks`` in this order.

        ``changed``: ids whose cells may differ (``None``: any may). ``refresh_times``:
        also redraw the moving time column of pending and running tasks.

        Only rows that were drawn have cells to compare; only the lines whose row, cells
        or cursor changed are redrawn.
        """
        at_top = self.cursor_row == 0 and offset == 0
        redrawn, dropped = self._rows.take(
            tasks, now, changed=changed, refresh_times=refresh_times, offset=offset, total=total
        )
        for tid in (*dropped, *redrawn):
            self._strips.pop(tid, None)
        wanted, self._wanted = self._wanted, None
        if wanted is not None and self._rows.order:
            row = max(0, min(len(self._rows.order) - 1, wanted - offset))
            self._cursor_id = self._rows.order[row]
            self.cursor_row = row
        elif at_top and self._rows.order:
            self._cursor_id = self._rows.order[0]  # a cursor on the first row follows the newest
        self._place_cursor()
        self._scroll_to_cursor()
        self._repaint(redrawn)

    def _repaint(self, redrawn: AbstractSet[str]) -> None:
        """Ask for a redraw of the row lines that now show something else (or changed)."""
        order, top, cursor = self._rows.order, self._top, self.cursor_row
        shown = [
            (order[row], row == cursor) for row in range(top, min(len(order), top + self._page))
        ]
        before = self._shown
        self._shown = shown
        dirty = [
            y
            for y in range(max(len(before), len(shown)))
            if y >= len(shown)
            or y >= len(before)
            or shown[y] != before[y]
            or shown[y][0] in redrawn
        ]
        if not dirty:
            return
        self.lines_refreshed += len(dirty)
        if len(dirty) * 2 > len(shown):
            self.refresh()
            return
        width = self.size.width
        self.refresh(*(Region(0, 1 + y, width, 1) for y in dirty))

    # ------------------------------------------------------------------ cursor
    def _place_cursor(self) -> None:
        """Keep the cursor on the same task when rows move; clamp when it left."""
        if not self._rows.order:
            self._cursor_id = None
            self.cursor_row = 0
            return
        row = self._rows.index.get(self._cursor_id or "", -1)
        if row < 0:
            row = min(self.cursor_row, len(self._rows.order) - 1)
            self._cursor_id = self._rows.order[row]
        self.cursor_row = row

    @property
    def _page(self) -> int:
        return max(1, self.size.height - 1)

    def _scroll_to_cursor(self) -> None:
        row, page = self.cursor_row, self._page
        top = max(0, min(self._top, len(self._rows.order) - page))
        if row < top:
            top = row
        elif row >= top + page:
            top = row - page + 1
        self._top = top
        subtitle = self._rows.span(top, page)
        if subtitle != self._subtitle:
            # Setting a border title redraws the whole widget: only when it changed.
            self._subtitle = subtitle
            self.border_subtitle = subtitle

    def _move_to(self, row: int) -> None:
        """Put the cursor on ``row`` of the rows held; past them, ask for another window."""
        if not self._rows.order:
            return
        position = max(0, min(self._rows.total - 1, self._rows.offset + row))
        if not 0 <= position - self._rows.offset < len(self._rows.order):
            self._wanted = position
            self.post_message(self.WindowNeeded(position))
            return
        row = position - self._rows.offset
        self._cursor_id = self._rows.order[row]
        self.cursor_row = row
        self._scroll_to_cursor()
        self._repaint(set())

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self._move_to(max(self.cursor_row, self._top + self._page) + 2)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self._move_to(min(self.cursor_row, self._top) - 3)

    def on_resize(self) -> None:
        self._scroll_to_cursor()
        self._repaint(set())

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor_row + direction * self._page)

    def action_edge(self, end: int) -> None:
        self._move_to(self._rows.total - 1 - self._rows.offset if end else -self._rows.offset)

    def action_open(self) -> None:
        if self._cursor_id is not None:
            self.post_message(self.Opened(self._cursor_id))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = column_at(offset.x)
            if column is not None:
                self.post_message(self.HeaderClicked(column))
            return
        row = self._top + offset.y - 1
        if 0 <= row < len(self._rows.order):
            if row == self.cursor_row and event.chain >= 2:
                self.action_open()
            self._move_to(row)

    # ------------------------------------------------------------------ drawing
    def render_lines(self, crop: Region) -> list[Strip]:
        # The width once a pass and the styles once per style change, not once a line:
        # ``rich_style`` walks the ancestors on every call (measured: a third of the
        # table's drawing time under load).
        self._width = self.size.width
        if self._pen is None:
            self._pen = _Pen.of(self)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        pen = self._pen or _Pen.of(self)
        width = self._width
        if y == 0:
            return row_strip(HEADER_CLUSTER if self.cluster else HEADER, pen.header, None, width)
        row = self._top + y - 1
        if row >= len(self._rows.order):
            if y == 2 and not self._rows.order and self._empty_text:
                text = f"  {self._empty_text}"[:width].ljust(width)
                return Strip([Segment(text, pen.base + _DIM)], width)
            return Strip.blank(width, pen.base)
        tid = self._rows.order[row]
        if row == self.cursor_row:
            return row_strip(self._shown_row(tid), pen.cursor, None, width)
        odd = row % 2
        cached = self._strips.get(tid)
        if cached is None or cached[0] != width:
            cached = self._strips[tid] = (width, [None, None])
        strip = cached[1][odd]
        if strip is None:
            # Both parities are kept: when a new task enters at the top every row moves
            # down one line and flips its zebra parity, and must not be rebuilt for it.
            cells = self._shown_row(tid)
            style = pen.zebra if odd else pen.base
            strip = row_strip(cells, style, self._status_styles.get(cells[2]), width)
            cached[1][odd] = strip
        return strip


class _Pen(NamedTuple):
    """The table's styles for one drawing pass (they change only with CSS or theme)."""

    base: Style
    zebra: Style
    header: Style
    cursor: Style

    @classmethod
    def of(cls, table: TaskTable) -> _Pen:
        base = table.rich_style
        return cls(
            base,
            base + table.get_component_rich_style("task-table--zebra"),
            table.get_component_rich_style("task-table--header"),
            table.get_component_rich_style("task-table--cursor"),
        )
