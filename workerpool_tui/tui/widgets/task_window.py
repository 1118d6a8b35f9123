"""The rows a task table holds: one window of the filtered, sorted list, and the cells of
the rows built so far. No Textual here: the table (:mod:`.task_table`) scrolls, moves its
cursor and draws; this says which rows there are and which of them changed."""

from __future__ import annotations

from collections.abc import Iterable

from ...core import Task
from .cells import is_live
from .task_rows import Cells, row_cells


class RowWindow:
    """Rows ``offset`` to ``offset + len(order)`` of a list of ``total`` tasks."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        """The window: the tasks the table may show, by id."""
        self.cells: dict[str, Cells] = {}
        """Cells of the rows drawn so far (only rows that were on screen are ever built)."""
        self.order: list[str] = []
        self.index: dict[str, int] = {}
        """Each id's row in :attr:`order`."""
        self.offset = 0
        """Position of the first row held in the whole filtered, sorted list."""
        self.total = 0
        """Rows in the whole list (the table holds a window of it)."""
        self.now = 0.0
        self.cluster = False
        """Cluster mode: each row names the instance that runs (or ran) its task."""

    def row(self, task_id: str) -> Cells:
        """The cells of a row, built the first time it is asked for."""
        cells = self.cells.get(task_id)
        if cells is None:
            cells = self.cells[task_id] = row_cells(self.tasks[task_id], self.now, self.cluster)
        return cells

    def span(self, top: int, page: int) -> str:
        """Which rows of the whole list a page from row ``top`` shows: ``rows 401-435 of
        100,000``."""
        shown = min(len(self.order), top + page)
        first = self.offset + top + 1 if shown else 0
        return f"rows {first:,}-{self.offset + shown:,} of {self.total:,}"

    def take(
        self,
        tasks: list[Task],
        now: float,
        *,
        changed: Iterable[str] | None,
        refresh_times: bool,
        offset: int,
        total: int | None,
    ) -> tuple[set[str], list[str]]:
        """Hold ``tasks`` in this order; returns the rows whose cells changed, and the rows
        that left the window (see :meth:`.TaskTable.show` for the arguments)."""
        self.now = now
        self.offset = offset
        self.total = len(tasks) if total is None else max(total, offset + len(tasks))
        window = {t.id: t for t in tasks}
        cells = self.cells
        dropped = [tid for tid in cells if tid not in window]
        for tid in dropped:
            del cells[tid]
        self.tasks = window
        if changed is None:
            check: Iterable[str] = list(cells)
        else:
            check = {tid for tid in changed if tid in cells}
            if refresh_times:
                check.update(tid for tid in cells if is_live(window[tid]))
        redrawn: set[str] = set()
        for tid in check:
            new = row_cells(window[tid], now, self.cluster)
            if new != cells[tid]:
                cells[tid] = new
                redrawn.add(tid)
        want = list(window)
        if self.order != want:
            self.order = want
            self.index = {tid: i for i, tid in enumerate(want)}
        return redrawn, dropped
