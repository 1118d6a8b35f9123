"""The dashboard app: layout and the view keys (filter, search, sort, theme, help).

The app reads and acts through one :class:`~.source.DashboardSource` (the engine in this
process, or an attached server). The steady tick that applies what changed lives in
:mod:`.ticking`, the task and pool actions in :mod:`.actions`, quitting in
:mod:`.quitting`, the bindings and palette in :mod:`.keys`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen, Screen
from textual.widgets import Header, Input, Tabs, TextArea

from ..core import Engine, Task
from ..logging import RecordBuffer
from . import keys
from .actions import Actions
from .bridge import EngineSource
from .cluster_views import VIEW_HIDDEN_ACTIONS, ClusterViews
from .commands import Command, DashboardCommands
from .quitting import Quitting
from .screens.bulk import BulkActions
from .screens.detail import DetailScreen
from .screens.help import HelpScreen, KeyRow
from .screens.shutdown import ShutdownScreen
from .source import DashboardSource
from .ticking import TICK_HZ, Ticking
from .view_model import SORT_COLUMNS, Query, ServerStatus, SortSpec
from .widgets.chart import Chart
from .widgets.filter_tabs import FILTER_WAITING, FILTERS, FilterTabs
from .widgets.footer import Footer
from .widgets.log_panel import LogPanel
from .widgets.scaling_log import ScalingLog
from .widgets.stats_bar import StatsBar, StatsLine
from .widgets.task_table import TaskTable

__all__ = ["TICK_HZ", "WINDOW_ROWS", "DashboardApp"]

WINDOW_ROWS = 100
"""Rows the table holds: a window of the filtered, sorted task list (a screenful is ~35);
the cursor moving past it fetches the window around it (TaskTable.WindowNeeded)."""

_FILTER_STATUS = {key: status for key, _, status in FILTERS}
_LIGHT, _DARK = "textual-light", "textual-dark"


class DashboardApp(Ticking, Actions, BulkActions, Quitting, ClusterViews, App[int]):
    """The dashboard over one :class:`~.source.DashboardSource`: the engine in this
    process (``engine=``) or a server it is attached to (``bridge=RemoteSource(...)``)."""

    CSS_PATH = "app.tcss"
    TITLE = "workerpool-tui"
    COMMANDS = App.COMMANDS | {DashboardCommands}
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    """``-short`` (under 32 lines) makes the charts and the log panel smaller (app.tcss)."""
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    """``-narrow`` (under 120 columns): the stats bar says less (widgets/stats_bar.py)."""
    AUTO_FOCUS = "TaskTable"
    """The table, not the (hidden) search box: typed keys are commands until ``/``."""

    BINDINGS: ClassVar[list[BindingType]] = keys.BINDINGS

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        records: RecordBuffer | None = None,
        server_status: Callable[[], ServerStatus] | None = None,
        keymap: dict[str, str] | None = None,
        freeze_timing: bool = False,
        bridge: DashboardSource | None = None,
    ) -> None:
        super().__init__()
        if bridge is None:
            if engine is None:
                raise TypeError("DashboardApp needs an engine or a source")
            bridge = EngineSource(engine, records=records, server_status=server_status)
        self.bridge: DashboardSource = bridge
        self._keymap_overrides = dict(keymap or {})
        self._freeze_timing = freeze_timing
        self.query_state = Query(limit=WINDOW_ROWS)
        self._filter_key = "all"
        self._window: list[Task] = []
        self._window_total = 0
        self._window_dirty = True
        self._last_slow_query = 0.0
        self._ticks = 0
        self._behind = False
        """Another screen is on top; the main view catches up when it is back."""
        self._stats_line: StatsLine | None = None
        self._paused_shown = False
        self._last_submit: tuple[str, str] | None = None
        self.tick_times: deque[float] = deque(maxlen=20_000)
        """``perf_counter()`` of every tick (benchmarks read the gaps)."""
        self.last_effect_at = 0.0
        """``perf_counter()`` when the last key's effect was applied."""

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield StatsBar(id="stats")
        with Horizontal(id="charts"):
            yield Chart("Throughput", "tasks/s", id="chart-throughput")
            yield Chart("Queue", "tasks", id="chart-queue")
            yield Chart("Workers", "workers", id="chart-workers")
            yield ScalingLog(id="scaling")
        yield FilterTabs(id="filters")
        yield Input(
            placeholder="search ids, types and messages · Enter: back to the table · Esc: clear",
            id="search",
        )
        yield TaskTable(id="tasks")
        yield LogPanel(id="log")
        yield Footer()

    def on_mount(self) -> None:
        # Widgets are looked up once: the tick must not search the DOM 12 times a second.
        self._table = self.query_one(TaskTable)
        self._stats_bar = self.query_one(StatsBar)
        self._tabs = self.query_one(FilterTabs)
        self._scaling = self.query_one(ScalingLog)
        self._log_panel = self.query_one(LogPanel)
        self._charts = (
            self.query_one("#chart-throughput", Chart),
            self.query_one("#chart-queue", Chart),
            self.query_one("#chart-workers", Chart),
        )
        self._table.cluster = self.bridge.cluster
        self._apply_keymap()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.query_one("#search").display = False
        self.query_one("#log").display = False
        self._table.focus()
        self._apply(self.bridge.take(), force=True, sample=True)
        self.set_interval(1 / TICK_HZ, self._tick, name="dashboard-tick")
        self.watch_engine()

    def _apply_keymap(self) -> None:
        if not self._keymap_overrides:
            return
        known = {binding_id for _, _, _, binding_id in self.key_rows()}
        unknown = sorted(set(self._keymap_overrides) - known)
        if unknown:
            self.log_line("warning", f"[keymap]: unknown binding id(s): {', '.join(unknown)}")
            self.notify(
                f"[keymap]: unknown binding id(s): {', '.join(unknown)}", severity="warning"
            )
        self.set_keymap({k: v for k, v in self._keymap_overrides.items() if k in known})

    def log_line(self, level: str, line: str) -> None:
        self._log_panel.add_lines([(level, line)])

    # ------------------------------------------------------------------ actions: view
    def action_filter(self, key: str) -> None:
        if not self._main_only() or key not in _FILTER_STATUS:
            return
        self._set_filter(key)
        self._tabs.active = f"filter-{key}"

    def _set_filter(self, key: str) -> None:
        if key == self._filter_key:
            return
        self._filter_key = key
        status = _FILTER_STATUS[key]
        self.query_state = Query(
            statuses=None if status is None else frozenset({status}),
            search=self.query_state.search,
            sort=self.query_state.sort,
            limit=WINDOW_ROWS,
            waiting=FILTER_WAITING.get(key),
        )
        self._window_dirty = True
        self._apply_now()

    @on(TaskTable.WindowNeeded)
    def _window_needed(self, event: TaskTable.WindowNeeded) -> None:
        """Fetch the rows around ``event.row``: the table is a window over the whole list."""
        q = self.query_state
        offset = max(0, min(event.row - WINDOW_ROWS // 2, self._window_total - WINDOW_ROWS))
        if offset == q.offset:
            return
        self.query_state = Query(
            statuses=q.statuses,
            search=q.search,
            sort=q.sort,
            limit=q.limit,
            offset=offset,
            waiting=q.waiting,
        )
        self._window_dirty = True
        self._apply_now()

    @on(Tabs.TabActivated, "#filters")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        tab_id = event.tab.id or ""
        self._set_filter(tab_id.removeprefix("filter-"))

    def action_search(self) -> None:
        if not self._main_only():
            return
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()
        self.last_effect_at = time.perf_counter()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self._set_search(event.value)

    def _set_search(self, text: str) -> None:
        q = self.query_state
        if text == q.search:
            return
        self.query_state = Query(
            statuses=q.statuses, search=text, sort=q.sort, limit=q.limit, waiting=q.waiting
        )
        self._window_dirty = True

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self._apply_now()
        self._table.focus()

    def action_clear_search(self) -> None:
        if not self._main_only():
            return
        search = self.query_one("#search", Input)
        search.value = ""
        search.display = False
        self._set_search("")
        self._table.focus()
        self._apply_now()

    def action_sort_next(self) -> None:
        if not self._main_only():
            return
        column = self.query_state.sort.column
        nxt = SORT_COLUMNS[(SORT_COLUMNS.index(column) + 1) % len(SORT_COLUMNS)]
        self._set_sort(SortSpec(column=nxt, descending=self.query_state.sort.descending))

    def action_sort_reverse(self) -> None:
        if not self._main_only():
            return
        s = self.query_state.sort
        self._set_sort(SortSpec(column=s.column, descending=not s.descending))

    @on(TaskTable.HeaderClicked)
    def _header_clicked(self, event: TaskTable.HeaderClicked) -> None:
        column = event.column
        if column not in SORT_COLUMNS:
            self.notify(f"the {column} column does not sort", severity="warning")
            return
        s = self.query_state.sort
        descending = not s.descending if s.column == column else True
        self._set_sort(SortSpec(column=column, descending=descending))

    def _set_sort(self, sort: SortSpec) -> None:
        q = self.query_state
        self.query_state = Query(
            statuses=q.statuses, search=q.search, sort=sort, limit=q.limit, waiting=q.waiting
        )
        self._window_dirty = True
        self._apply_now()

    def action_toggle_log(self) -> None:
        log = self._log_panel
        log.display = not log.display
        self.last_effect_at = time.perf_counter()

    def action_toggle_theme(self) -> None:
        self.theme = _LIGHT if self.current_theme.dark else _DARK

    def _theme_changed(self, _theme: object) -> None:
        self._table.use_theme()
        self._window_dirty = True
        self._apply_now()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.key_rows()))

    # ------------------------------------------------------------------ messages
    @on(TaskTable.Opened)
    def _row_opened(self, event: TaskTable.Opened) -> None:
        self.open_task(event.task_id)

    @on(DetailScreen.CancelTask)
    def _detail_cancel(self, event: DetailScreen.CancelTask) -> None:
        self.ask_cancel(event.task_id)

    @on(DetailScreen.OpenTask)
    def _detail_open(self, event: DetailScreen.OpenTask) -> None:
        self.open_task(event.task_id)

    @on(DetailScreen.SubmitAgain)
    def _detail_retry(self, event: DetailScreen.SubmitAgain) -> None:
        self._retry(event.task_id)

    @on(ShutdownScreen.Force)
    def _force_requested(self) -> None:
        self._force_quit()

    # ------------------------------------------------------------------ keys and commands
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A form shows only its own keys in its footer; the detail view shows the main
        # view's keys dimmed (they do nothing there).
        if isinstance(self.screen, ModalScreen) and action in keys.DASHBOARD_ACTIONS:
            return False
        if self.on_a_view_screen() and (
            action in VIEW_HIDDEN_ACTIONS or action in keys.MAIN_ONLY_ACTIONS
        ):
            return False  # the Instances and Workers screens show their own keys
        if action == "submit" and isinstance(self.focused, (Input, TextArea)):
            return False  # n is a letter there (the binding has priority over the field)
        if action in ("pause", "resume"):
            return self.bridge.paused() == (action == "resume")
        if len(self.screen_stack) > 1 and action in keys.MAIN_ONLY_ACTIONS:
            return None
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Textual's own "Quit" (as soon as possible) would contradict q: ours is in the list.
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command

    def key_rows(self) -> list[KeyRow]:
        return keys.key_rows(self, self._keymap_overrides)

    def palette_commands(self) -> list[Command]:
        return keys.palette_commands(self)
