"""The Instances screen (``I``): every instance of the cluster, live.

Name, host, pid, version, workers (current / busy), tasks done, the age of the last
heartbeat and the state, read from the cluster's store once a second (outside cluster
mode: this process alone, and the screen says so). The screen polls through the callable
it is given, so it never sees the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ...core.instance_view import InstanceInfo
from ..widgets.cells import duration
from ..widgets.footer import Footer

REFRESH_S = 1.0
Fetch = Callable[[], Awaitable[tuple[list[InstanceInfo], bool]]]
"""Reads ``(instances, cluster)``."""

COLUMNS = ("Name", "Host", "PID", "Version", "Workers", "Done", "Heartbeat", "State")
_STATE_STYLE = {
    "running": "bold green",
    "stopping": "yellow",
    "stopped": "dim",
    "dead": "bold red",
    "unresponsive": "bold red",
}
_logger = logging.getLogger("workerpool_tui.tui")


def instance_cells(i: InstanceInfo) -> tuple[str | Text, ...]:
    """One row: the instance answering is marked ``*``."""
    return (
        Text(f"{i.name} *" if i.this else i.name, style="bold" if i.this else ""),
        i.host,
        str(i.pid),
        i.version,
        f"{i.workers} / {i.busy} busy",
        f"{i.done:,}",
        "now" if i.heartbeat_age_s < 0.05 else f"{duration(i.heartbeat_age_s)} ago",
        Text(i.state, style=_STATE_STYLE.get(i.state, "")),
    )


def summary(instances: list[InstanceInfo], cluster: bool) -> str:
    if not cluster:
        return (
            "Not in cluster mode: this instance only "
            "(start with --store postgresql://… to join a cluster)."
        )
    running = sum(1 for i in instances if i.state == "running")
    workers = sum(i.workers for i in instances if i.state == "running")
    busy = sum(i.busy for i in instances if i.state == "running")
    return (
        f"Cluster: {len(instances)} instance{'s' if len(instances) != 1 else ''}, "
        f"{running} running · {workers} workers, {busy} busy · * = this one"
    )


class InstancesScreen(Screen[None]):
    """The cluster's instances, refreshed every :data:`REFRESH_S` seconds."""

    DEFAULT_CSS = """
    InstancesScreen #instances-summary {
        padding: 0 1;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,I",
            "app.pop_screen",
            "Back",
            tooltip="Back to the task list",
            id="instances.back",
        ),
    ]

    def __init__(self, fetch: Fetch, *, refresh_s: float = REFRESH_S) -> None:
        super().__init__()
        self._fetch = fetch
        self._refresh_s = refresh_s
        self.instances: list[InstanceInfo] = []
        """What the table shows now."""
        self.cluster = False
        self.polls = 0
        """Answers shown so far (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading…", id="instances-summary")
        yield DataTable(id="instances-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Instances"
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        table.focus()
        self.poll()
        if self._refresh_s > 0:
            self.set_interval(self._refresh_s, self.poll, name="instances-poll")

    @work(exclusive=True, group="instances-poll")
    async def poll(self) -> None:
        try:
            instances, cluster = await self._fetch()
        except Exception as exc:  # a store that cannot answer now: say so, try again
            _logger.warning("instances: %s", exc)
            self.query_one("#instances-summary", Static).update(
                Text(f"cannot read the instances now: {exc}", style="bold red")
            )
            return
        self.show(instances, cluster)

    def show(self, instances: list[InstanceInfo], cluster: bool) -> None:
        self.instances, self.cluster = instances, cluster
        self.polls += 1
        self.query_one("#instances-summary", Static).update(summary(instances, cluster))
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for i in instances:
            table.add_row(*instance_cells(i), key=i.id)
        if instances:
            table.move_cursor(row=min(row, len(instances) - 1))
