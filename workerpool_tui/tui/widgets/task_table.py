"""The task table: a window of keyed rows, patched cell by cell.

The table never holds more than the window the app gives it (the newest or top-N tasks
that match the filter). Each tick it removes rows that left the window, adds the ones
that entered, and rewrites only the cells whose text changed, with
``update_cell(..., update_width=False)`` (columns have fixed widths, so nothing is
measured). When most of the window is new it is cheaper to clear and refill, which is
what a fast-moving "newest first" view does under load. The highlighted task keeps the
cursor when rows move around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from ...core import Task
from ..bridge import short_id
from .cells import age_or_duration, is_live, progress_bar, status_styles

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "ID", 8),
    ("type", "Type", 18),
    ("status", "Status", 9),
    ("progress", "Progress", 15),
    ("priority", "Prio", 5),
    ("age", "Age / took", 11),
    ("worker", "Worker", 6),
    ("message", "Message", 48),
)
COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)

Cells = tuple[str, str, Text, Text, str, str, str, str]


class TaskTable(DataTable[str | Text]):
    """Keyed rows (row key = task id) showing one window of tasks."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "select_cursor",
            "Open",
            tooltip="Open the highlighted task",
            id="task.open",
        ),
    ]

    DEFAULT_CSS = """
    TaskTable {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._cells: dict[str, Cells] = {}
        self._order: list[str] = []
        self._styles: dict[str, str] = {}
        self.rebuilds = 0
        """How many times the window was refilled from scratch (for tests and benches)."""
        self.cell_updates = 0

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)
        self.use_theme()

    def use_theme(self) -> None:
        """Take the status colours from the current theme (called again on theme change)."""
        theme = self.app.current_theme
        self._styles = status_styles(
            success=theme.success or "green",
            warning=theme.warning or "yellow",
            error=theme.error or "red",
            accent=theme.accent or theme.primary,
            muted="dim",
        )
        if self._cells:
            self._cells = {}
            self.clear()
            self._order = []

    @property
    def highlighted_id(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return key.value

    @property
    def shown_ids(self) -> list[str]:
        return list(self._order)

    def _row_cells(self, task: Task, now: float) -> Cells:
        style = self._styles.get(task.status.value, "")
        return (
            short_id(task.id),
            task.type,
            Text(task.status.value, style=style),
            progress_bar(task.progress, style),
            str(task.priority),
            age_or_duration(task, now),
            "-" if task.worker is None else str(task.worker),
            task.message or "",
        )

    def show(
        self,
        tasks: list[Task],
        now: float,
        *,
        changed: Iterable[str] | None,
        refresh_times: bool,
    ) -> None:
        """Make the table show ``tasks`` in this order.

        ``changed``: ids whose cells may differ (``None``: any may). ``refresh_times``:
        also redraw the moving time column of pending and running tasks.
        """
        cursor_id = self.highlighted_id
        want = [t.id for t in tasks]
        have = self._cells
        keep = sum(1 for tid in want if tid in have)
        if not have or keep * 2 < len(want):
            self._refill(tasks, now)
        else:
            self._patch(tasks, now, changed, refresh_times)
        if self._order != want:
            rank = {short_id(tid): i for i, tid in enumerate(want)}
            self.sort("id", key=lambda cell: rank.get(cell, 0))
            self._order = want
        if cursor_id is not None and cursor_id in self._cells:
            row = self.get_row_index(cursor_id)
            if row != self.cursor_row:
                self.move_cursor(row=row, scroll=False)

    def _refill(self, tasks: list[Task], now: float) -> None:
        self.rebuilds += 1
        self.clear()
        cells = {t.id: self._row_cells(t, now) for t in tasks}
        for tid, row in cells.items():
            self.add_row(*row, key=tid)
        self._cells = cells
        self._order = list(cells)

    def _patch(
        self, tasks: list[Task], now: float, changed: Iterable[str] | None, refresh_times: bool
    ) -> None:
        have = self._cells
        want = {t.id for t in tasks}
        for tid in [tid for tid in have if tid not in want]:
            self.remove_row(tid)
            del have[tid]
        dirty = None if changed is None else set(changed)
        for task in tasks:
            tid = task.id
            old = have.get(tid)
            if old is None:
                row = self._row_cells(task, now)
                self.add_row(*row, key=tid)
                have[tid] = row
                self._order.append(tid)
                continue
            if dirty is not None and tid not in dirty and not (refresh_times and is_live(task)):
                continue
            new = self._row_cells(task, now)
            if new == old:
                continue
            for index in range(len(new)):
                if old[index] != new[index]:
                    self.update_cell(tid, COLUMN_KEYS[index], new[index], update_width=False)
                    self.cell_updates += 1
            have[tid] = new
        self._order = [tid for tid in self._order if tid in have]
