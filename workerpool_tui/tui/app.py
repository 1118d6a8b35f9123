"""The dashboard app: layout, the view keys, and the steady tick that applies what changed.

The app never waits on the bus. A timer ticks :data:`TICK_HZ` times a second; each tick
takes the bridge's folded changes and applies them inside ``batch_update()``, so the
screen moves at a calm, steady rate however fast the engine runs. A key press applies its
effect at once (it does not wait for the next tick). The task and pool actions live in
:mod:`.actions`, quitting in :mod:`.quitting`, the bindings and palette in :mod:`.keys`.
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
from textual.widgets import Footer, Header, Input, Tabs, TextArea

from ..core import Engine, Task
from ..logging import RecordBuffer
from . import keys
from .actions import Actions
from .bridge import SORT_COLUMNS, Bridge, Changes, Query, ServerStatus, SortSpec
from .cluster_views import VIEW_HIDDEN_ACTIONS, ClusterViews
from .commands import Command, DashboardCommands
from .quitting import Quitting
from .screens.bulk import BulkActions
from .screens.detail import DetailScreen
from .screens.help import HelpScreen, KeyRow
from .screens.shutdown import ShutdownScreen
from .widgets.chart import Chart
from .widgets.filter_tabs import FILTER_WAITING, FILTERS, FilterTabs
from .widgets.log_panel import LogPanel
from .widgets.scaling_log import ScalingLog
from .widgets.stats_bar import StatsBar, StatsLine
from .widgets.task_table import TaskTable

TICK_HZ = 10
SLOW_QUERY_S = 0.5
"""A window query that scans every task (search, non-default sort) runs at most this often."""
WINDOW_ROWS = 100
"""Rows the table holds: a window of the filtered, sorted task list (a screenful is ~35);
the cursor moving past it fetches the window around it (TaskTable.WindowNeeded)."""
DEEP_OFFSET = 2_000
"""A window further down the list than this is fetched at most every SLOW_QUERY_S."""

_FILTER_STATUS = {key: status for key, _, status in FILTERS}
_LIGHT, _DARK = "textual-light", "textual-dark"


class DashboardApp(Actions, BulkActions, Quitting, ClusterViews, App[int]):
    """The dashboard over one engine, reached only through a :class:`Bridge`."""

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
        engine: Engine,
        *,
        records: RecordBuffer | None = None,
        server_status: Callable[[], ServerStatus] | None = None,
        keymap: dict[str, str] | None = None,
        freeze_timing: bool = False,
        bridge: Bridge | None = None,
    ) -> None:
        super().__init__()
        self.bridge = bridge or Bridge(engine, records=records, server_status=server_status)
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

    # ------------------------------------------------------------------ the tick
    def _drawable(self) -> bool:
        """False once the app shuts down: the timer calls :meth:`_tick` from a task of its
        own, which can run while the screens (and their widgets) are being removed."""
        return self.is_running and bool(self.screen_stack)

    def _tick(self) -> None:
        if not self._drawable():
            return
        self.tick_times.append(time.perf_counter())
        changes = self.bridge.take()
        with self.batch_update():
            self._apply(changes)

    def _apply_now(self) -> None:
        """Apply a key's effect at once instead of on the next tick."""
        if not self._drawable():
            return
        changes = self.bridge.take()
        with self.batch_update():
            self._apply(changes, force=True)
        self.last_effect_at = time.perf_counter()

    def _apply(self, ch: Changes, *, force: bool = False, sample: bool = False) -> None:
        self._ticks += 1
        bridge = self.bridge
        now = bridge.now()
        sampled = bridge.sample() or sample
        screen = self.screen
        if len(self.screen_stack) > 1:
            # Nothing is drawn behind another screen: remember to catch up on return.
            self._behind = True
        else:
            if self._behind:
                self._behind = False
                force = sampled = True
            self._apply_main(ch, now, force=force, sampled=sampled)

        if isinstance(screen, DetailScreen) and screen.drawable:
            task = bridge.get(screen.task_id)
            if (
                force
                or ch.rebuild
                or screen.task_id in ch.task_ids
                or (sampled and task is not None and not task.status.final)
                or (sampled and screen.has_relatives)  # their statuses move on
            ):
                screen.show(task, now)
        if ch.logs:
            self._log_panel.add_lines(ch.logs)
        if sampled:
            self.check_health()
        if self._quitting:
            self._shutdown_progress()

    def _apply_main(self, ch: Changes, now: float, *, force: bool, sampled: bool) -> None:
        bridge = self.bridge
        if sampled:
            for chart, series in zip(
                self._charts, (bridge.throughput, bridge.queue_depth, bridge.workers), strict=True
            ):
                chart.set_series(series)
        if force or ch.pool or sampled:
            # Once a second, with the charts: a stats bar redrawn in a tick of its own
            # widens that screen update from the table to everything above it (measured:
            # +5 ms a time); pool changes (pause, resize) still show at once.
            self._update_stats()
        if force or ch.pool:
            self._scaling.decisions = tuple(bridge.scaling())
            if bridge.paused() != self._paused_shown:  # paused or resumed (say, by the API)
                self._paused_shown = bridge.paused()
                self.refresh_bindings()
        self._update_table(ch, now, force=force, refresh_times=sampled)

    def _update_stats(self) -> None:
        stats = self.bridge.stats()
        line = StatsLine(
            stats=stats,
            server=self.bridge.server(),
            resyncs=self.bridge.resyncs,
            show_timing=not self._freeze_timing,
        )
        if line != self._stats_line:
            self._stats_line = line
            self._stats_bar.line = line

    def _update_table(self, ch: Changes, now: float, *, force: bool, refresh_times: bool) -> None:
        q = self.query_state
        slow = (
            q.waiting is not None
            or bool(q.search.strip())
            or not (q.sort.column == "age" and q.sort.descending)
            or q.offset > DEEP_OFFSET
        )
        requery = force or ch.rebuild or ch.membership or self._window_dirty
        if refresh_times and q.waiting is not None:
            requery = True  # a task whose time came leaves the Scheduled rows (no event says so)
        if requery and slow and not force:
            mono = time.monotonic()
            if mono - self._last_slow_query < SLOW_QUERY_S:
                requery = False  # the window catches up within SLOW_QUERY_S
            else:
                self._last_slow_query = mono
        if requery:
            self._window, self._window_total = self.bridge.query(q)
            self._window_dirty = False
        elif not ch.task_ids and not refresh_times:
            return
        table = self._table
        table.show(
            self._window,
            now,
            changed=None if (force or ch.rebuild) else ch.task_ids,
            refresh_times=refresh_times,
            offset=q.offset,
            total=self._window_total,
        )
        if requery:
            table.border_title = self._table_title()
            table.empty_text = self._empty_text()

    def _empty_text(self) -> str:
        """Why the table is empty, when it is."""
        if self._window_total:
            return ""
        tracked = self.bridge.tracked()
        if not tracked:
            return "no tasks yet — press n to submit some"
        return f"0 of {tracked:,} match"

    def _table_title(self) -> str:
        q = self.query_state
        label = dict((k, lbl) for k, lbl, _ in FILTERS)[self._filter_key]
        shown = len(self._window)
        arrow = "▼" if q.sort.descending else "▲"
        sort = (
            "newest first"
            if q.sort.column == "age" and q.sort.descending
            else f"{q.sort.column} {arrow}"
        )
        title = f"Tasks · {label} · {shown:,} of {self._window_total:,} · sort: {sort}"
        if q.search.strip():
            title += f" · search: {q.search.strip()!r}"
        return title

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
