"""The Schedules screen (``S``): the engine's recurring schedules, live.

Each schedule's rule, its next run counting down, its last run and that run's status
(coloured), and whether it is paused. ``p`` pauses or resumes the highlighted one, ``r``
runs it now, ``d`` deletes it (asks first), ``a`` opens the add form. Schedules from the
configuration file are read-only: the keys that would change them say so and change
nothing. The screen talks to a :class:`~..source.ScheduleOps`: the engine's scheduler
in-process, or ``/api/v1/schedules`` of the server the dashboard is attached to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import msgspec
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ...core.errors import EngineError
from ...core.schedules import Schedule, ScheduleSpec
from ..source import ScheduleOps
from ..widgets.cells import duration
from ..widgets.footer import Footer
from .confirm import ConfirmScreen
from .schedule_form import ScheduleForm

REFRESH_S = 1.0
COLUMNS = ("Name", "Rule", "Next run", "Last run", "Last status", "Paused", "Source")
STATUS_STYLE = {
    "completed": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "running": "cyan",
    "pending": "dim",
}


def rule_text(s: Schedule) -> str:
    spec = s.spec
    if spec.cron is not None:
        return spec.cron if spec.timezone == "UTC" else f"{spec.cron} ({spec.timezone})"
    return f"every {duration(spec.every or 0.0)}"


def schedule_cells(s: Schedule, status: str | None, now: float) -> tuple[str | Text, ...]:
    paused = s.spec.paused
    if paused or s.next_run is None:
        next_run = "-"
    else:
        next_run = "in " + duration(s.next_run - now) if s.next_run > now else "due"
    return (
        s.spec.name,
        rule_text(s),
        next_run,
        "-" if s.last_run is None else duration(now - s.last_run) + " ago",
        Text(status or "-", style=STATUS_STYLE.get(status or "", "")),
        Text("paused", style="yellow") if paused else "",
        s.source,
    )


class SchedulesScreen(Screen[None]):
    """The schedules, refreshed every :data:`REFRESH_S` seconds."""

    DEFAULT_CSS = """
    SchedulesScreen #schedules-summary {
        padding: 0 1;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,S",
            "app.pop_screen",
            "Back",
            tooltip="Back to the task list",
            id="schedules.back",
        ),
        Binding(
            "p",
            "toggle_paused",
            "Pause/Resume",
            tooltip="Pause or resume the schedule",
            id="schedules.pause",
        ),
        Binding("r", "run_now", "Run now", tooltip="Submit one run now", id="schedules.run"),
        Binding(
            "d",
            "delete",
            "Delete",
            tooltip="Delete the schedule (asks first)",
            id="schedules.delete",
        ),
        Binding("a", "add", "Add", tooltip="Add a schedule (a form)", id="schedules.add"),
    ]

    def __init__(
        self,
        scheduler: ScheduleOps,
        now: Callable[[], float],
        types: Callable[[], list[str]],
        *,
        refresh_s: float = REFRESH_S,
    ) -> None:
        super().__init__()
        self._types = types
        self._scheduler = scheduler
        self._now = now
        self._refresh_s = refresh_s
        self.rows: list[Schedule] = []
        """What the table shows now."""
        self.polls = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="schedules-summary")
        yield DataTable(id="schedules-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Schedules"
        table = self.query_one("#schedules-table", DataTable)
        table.add_columns(*COLUMNS)
        table.focus()
        self.poll()
        if self._refresh_s > 0:
            self.set_interval(self._refresh_s, self.poll, name="schedules-poll")

    @work(exclusive=True, group="schedules-poll")
    async def poll(self) -> None:
        try:
            pairs = await self._scheduler.rows()
        except EngineError as exc:  # a server that cannot answer now: say so, try again
            self.query_one("#schedules-summary", Static).update(
                Text(f"cannot read the schedules now: {exc}", style="bold red")
            )
            return
        self.show([s for s, _ in pairs], [status for _, status in pairs], self._now())
        self.polls += 1

    def show(self, rows: list[Schedule], statuses: list[str | None], now: float) -> None:
        self.rows = rows
        paused = sum(1 for s in rows if s.spec.paused)
        self.query_one("#schedules-summary", Static).update(
            f"{len(rows)} schedule{'s' if len(rows) != 1 else ''}, {paused} paused"
            " · p pause/resume · r run now · d delete · a add"
        )
        table = self.query_one("#schedules-table", DataTable)
        row = table.cursor_row
        table.clear()
        for s, status in zip(rows, statuses, strict=True):
            table.add_row(*schedule_cells(s, status, now), key=s.spec.name)
        if rows:
            table.move_cursor(row=min(max(row, 0), len(rows) - 1))

    def highlighted(self) -> Schedule | None:
        row = self.query_one("#schedules-table", DataTable).cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def _writable(self, s: Schedule) -> bool:
        if s.source == "config":
            self.notify(
                f"schedule {s.spec.name!r} comes from the configuration file: change it there",
                severity="warning",
            )
            return False
        return True

    @work(group="schedules-change")
    async def action_toggle_paused(self) -> None:
        s = self.highlighted()
        if s is None:
            return  # a config schedule: the scheduler refuses, naming the file
        paused = not s.spec.paused
        try:
            spec = msgspec.structs.replace(s.spec, paused=paused)
            await self._scheduler.replace(s.spec.name, spec)
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"{s.spec.name}: {'paused' if paused else 'resumed'}", title="Schedules")
        self.poll()

    @work(group="schedules-change")
    async def action_run_now(self) -> None:
        s = self.highlighted()
        if s is None:
            return
        try:
            task_id = await self._scheduler.run_now(s.spec.name)
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(
            f"{s.spec.name}: submitted {task_id}" if task_id else f"{s.spec.name}: not submitted",
            title="Schedules",
        )
        self.poll()

    def action_delete(self) -> None:
        s = self.highlighted()
        if s is None or not self._writable(s):
            return
        name = s.spec.name

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete(name)

        self.app.push_screen(ConfirmScreen(f"Delete schedule {name!r}?"), answered)

    @work(group="schedules-change")
    async def _delete(self, name: str) -> None:
        try:
            await self._scheduler.delete(name)
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"{name}: deleted", title="Schedules")
        self.poll()

    def action_add(self) -> None:
        types = self._types()
        form = ScheduleForm(types, self._now, lambda t: t in types)
        self.app.push_screen(form, self._added)

    def _added(self, spec: ScheduleSpec | None) -> None:
        if spec is not None:
            self._add(spec)

    @work(group="schedules-change")
    async def _add(self, spec: ScheduleSpec) -> None:
        try:
            await self._scheduler.add(spec)
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"{spec.name}: added", title="Schedules")
        self.poll()
