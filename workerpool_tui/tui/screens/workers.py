"""The Workers screen (``W``): this instance's workers, live.

Each worker's state, the task it runs and for how long, and how many tasks it completed
and failed. Enter on a busy worker opens its task's detail (the screen posts
:class:`WorkersScreen.OpenTask`; the app opens it). Workers belong to the instance, like
the pool controls: in a cluster each instance shows its own. When task types run in worker
processes (``isolation = "process"``), a second table shows those: pid, task, CPU %,
resident memory, tasks done and restarts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ...core.procpool.pool import ProcessInfo
from ...core.worker_view import WorkerInfo
from ..widgets.cells import duration
from ..widgets.footer import Footer

REFRESH_S = 0.5
COLUMNS = ("Worker", "State", "Task", "Type", "Running for", "Done", "Failed")
PROCESS_COLUMNS = ("Slot", "PID", "Task", "CPU %", "RSS", "Tasks done", "Restarts")
_STATE_STYLE = {"busy": "bold", "idle": "dim", "retiring": "yellow"}


def worker_cells(w: WorkerInfo, now: float) -> tuple[str | Text, ...]:
    return (
        str(w.id),
        Text(w.state, style=_STATE_STYLE.get(w.state, "")),
        w.task_id[:8] if w.task_id else "-",
        w.task_type or "-",
        "-" if w.running_since is None else duration(now - w.running_since),
        f"{w.done:,}",
        Text(f"{w.failed:,}", style="bold red" if w.failed else ""),
    )


def process_cells(p: ProcessInfo) -> tuple[str | Text, ...]:
    return (
        str(p.slot),
        str(p.pid),
        p.task_id[:8] if p.task_id else "-",
        f"{p.cpu_pct:.0f}",
        f"{p.rss / 2**20:.1f} MiB",
        f"{p.tasks_done:,}",
        Text(f"{p.restarts:,}", style="bold red" if p.restarts else ""),
    )


class WorkersScreen(Screen[None]):
    """This instance's workers, refreshed every :data:`REFRESH_S` seconds."""

    DEFAULT_CSS = """
    WorkersScreen #workers-summary {
        padding: 0 1;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,W", "app.pop_screen", "Back", tooltip="Back to the task list", id="workers.back"
        ),
        Binding(
            "enter",
            "open_task",
            "Open task",
            tooltip="Open the highlighted worker's task",
            id="workers.open",
            priority=True,
        ),
    ]

    class OpenTask(Message):
        """The user asked for the detail of a worker's current task."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(
        self,
        fetch: Callable[[], list[WorkerInfo]],
        now: Callable[[], float],
        *,
        instance: str | None = None,
        refresh_s: float = REFRESH_S,
        processes: Callable[[], list[ProcessInfo]] | None = None,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        self._refresh = refresh
        """Awaited before each read: an attached dashboard fetches the workers then."""
        self._processes = processes
        self._fetch = fetch
        self._now = now
        self._instance = instance
        self._refresh_s = refresh_s
        self.rows: list[WorkerInfo] = []
        """What the table shows now."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="workers-summary")
        yield DataTable(id="workers-table", cursor_type="row", zebra_stripes=True)
        if self._processes is not None:
            yield Static(id="processes-summary")
            yield DataTable(id="processes-table", cursor_type="none", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Workers"
        table = self.query_one("#workers-table", DataTable)
        table.add_columns(*COLUMNS)
        table.focus()
        if self._processes is not None:
            self.query_one("#processes-table", DataTable).add_columns(*PROCESS_COLUMNS)
        self.poll()
        if self._refresh_s > 0:
            self.set_interval(self._refresh_s, self.poll, name="workers-poll")

    def poll(self) -> None:
        if self._refresh is not None:
            self._poll_remote()
            return
        self._show_now()

    def _show_now(self) -> None:
        self.show(self._fetch(), self._now())
        if self._processes is not None:
            self.show_processes(self._processes())

    @work(exclusive=True, group="workers-poll")
    async def _poll_remote(self) -> None:
        assert self._refresh is not None
        try:
            await self._refresh()
        except Exception as exc:  # the server cannot answer now: say so, try again
            self.query_one("#workers-summary", Static).update(
                Text(f"cannot read the workers now: {exc}", style="bold red")
            )
            return
        self._show_now()

    def show_processes(self, processes: list[ProcessInfo]) -> None:
        busy = sum(1 for p in processes if p.task_id is not None)
        restarts = sum(p.restarts for p in processes)
        self.query_one("#processes-summary", Static).update(
            f"{len(processes)} worker process{'es' if len(processes) != 1 else ''},"
            f" {busy} busy, {restarts} restart{'s' if restarts != 1 else ''}"
        )
        table = self.query_one("#processes-table", DataTable)
        table.clear()
        for p in processes:
            table.add_row(*process_cells(p), key=str(p.slot))

    def show(self, workers: list[WorkerInfo], now: float) -> None:
        self.rows = workers
        busy = sum(1 for w in workers if w.state == "busy")
        where = f" of instance {self._instance}" if self._instance else ""
        self.query_one("#workers-summary", Static).update(
            f"{len(workers)} worker{'s' if len(workers) != 1 else ''}{where}, {busy} busy"
            " · Enter: open the worker's task"
        )
        table = self.query_one("#workers-table", DataTable)
        row = table.cursor_row
        table.clear()
        for w in workers:
            table.add_row(*worker_cells(w, now), key=str(w.id))
        if workers:
            table.move_cursor(row=min(row, len(workers) - 1))

    def highlighted(self) -> WorkerInfo | None:
        row = self.query_one("#workers-table", DataTable).cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def action_open_task(self) -> None:
        w = self.highlighted()
        if w is None:
            return
        if w.task_id is None:
            self.notify(f"worker {w.id} is {w.state}: no task to open", severity="warning")
            return
        self.post_message(self.OpenTask(w.task_id))

    @on(DataTable.RowSelected)
    def _row_clicked(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_task()
