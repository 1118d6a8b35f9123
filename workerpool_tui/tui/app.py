"""The dashboard app: layout, keys, and the steady tick that applies what changed.

The app never waits on the bus. A timer ticks :data:`TICK_HZ` times a second; each tick
takes the bridge's folded changes and applies them inside ``batch_update()``, so the
screen moves at a calm, steady rate however fast the engine runs. A key press applies its
effect at once (it does not wait for the next tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import ClassVar

import anyio
import msgspec
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Header, Input, Tabs

from ..config import Config
from ..core import Engine, EngineError, Task
from ..core.errors import StoreUnavailable
from ..logging import RecordBuffer
from .bridge import SORT_COLUMNS, Bridge, Changes, Query, ServerStatus, SortSpec, SubmitRequest
from .cluster_views import EXIT_FATAL, ClusterViews
from .commands import Command, DashboardCommands
from .screens.confirm import ConfirmScreen
from .screens.detail import DetailScreen
from .screens.help import HelpScreen, KeyRow
from .screens.instances import InstancesScreen
from .screens.resize import ResizeScreen
from .screens.shutdown import ShutdownScreen
from .screens.submit import SubmitScreen
from .screens.workers import WorkersScreen
from .widgets.chart import Chart
from .widgets.filter_tabs import FILTERS, FilterTabs
from .widgets.log_panel import LogPanel
from .widgets.scaling_log import ScalingLog
from .widgets.stats_bar import StatsBar, StatsLine
from .widgets.task_table import TaskTable

TICK_HZ = 10
SLOW_QUERY_S = 0.5
"""A window query that scans every task (search, non-default sort) runs at most this often."""
WINDOW_ROWS = 100
"""Rows the table holds: the top of the filtered, sorted task list (a screenful is ~35)."""
CANCEL_ON_QUIT_S = 10.0

_FILTER_STATUS = {key: status for key, _, status in FILTERS}
_LIGHT, _DARK = "textual-light", "textual-dark"


def _bind(
    key: str,
    action: str,
    description: str,
    binding_id: str,
    tooltip: str,
    *,
    show: bool = True,
    priority: bool = False,
) -> Binding:
    return Binding(
        key, action, description, show=show, tooltip=tooltip, id=binding_id, priority=priority
    )


class DashboardApp(ClusterViews):
    """The dashboard over one engine, reached only through a :class:`Bridge`."""

    CSS_PATH = "app.tcss"
    TITLE = "workerpool-tui"
    COMMANDS = App.COMMANDS | {DashboardCommands}
    AUTO_FOCUS = "TaskTable"
    """The table, not the (hidden) search box: typed keys are commands until ``/``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        _bind("n", "submit", "Submit", "submit", "Submit tasks (a form)"),
        _bind("c", "cancel_task", "Cancel", "cancel", "Cancel the highlighted task (asks first)"),
        _bind("p", "toggle_pause", "Pause", "pause", "Pause or resume dispatching"),
        _bind("plus", "grow", "+Worker", "grow", "Raise min workers by one (the pool grows)"),
        _bind("minus", "shrink", "-Worker", "shrink", "Lower min workers by one"),
        _bind("w", "resize", "Resize", "resize", "Set min and max workers (a form)"),
        _bind("slash", "search", "Search", "search", "Search ids, types and messages"),
        _bind(
            "escape", "clear_search", "Clear search", "search.clear", "Clear the search", show=False
        ),
        _bind("s", "sort_next", "Sort", "sort", "Sort by the next column"),
        _bind("o", "sort_reverse", "Order", "sort.reverse", "Reverse the sort order"),
        *(
            _bind(
                str(i),
                f"filter('{key}')",
                label,
                f"filter.{key}",
                f"Show {label.lower()} tasks",
                show=False,
            )
            for i, (key, label, _) in enumerate(FILTERS, 1)
        ),
        _bind("l", "toggle_log", "Log", "log", "Show or hide the log panel"),
        _bind("t", "toggle_theme", "Theme", "theme", "Switch between light and dark"),
        _bind("question_mark,f1", "help", "Help", "help", "Every key"),
        _bind("q", "quit", "Quit", "quit", "Quit: let running tasks finish, then stop"),
        _bind("ctrl+c", "quit", "Quit", "quit.ctrl_c", "Quit", show=False, priority=True),
    ]

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
        self._last_submit: tuple[str, str] | None = None
        self._quitting = False
        self._quit_deadline = 0.0
        self._forcing = False
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
    def _tick(self) -> None:
        if not self.screen_stack:  # shutting down
            return
        self.tick_times.append(time.perf_counter())
        changes = self.bridge.take()
        with self.batch_update():
            self._apply(changes)

    def _apply_now(self) -> None:
        """Apply a key's effect at once instead of on the next tick."""
        if not self.screen_stack:
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

        if isinstance(screen, DetailScreen):
            task = bridge.get(screen.task_id)
            if (
                force
                or ch.rebuild
                or screen.task_id in ch.task_ids
                or (sampled and task is not None and not task.status.final)
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
        slow = bool(q.search.strip()) or not (q.sort.column == "age" and q.sort.descending)
        requery = force or ch.rebuild or ch.membership or self._window_dirty
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
        )
        if requery:
            table.border_title = self._table_title()

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
    def _main_only(self) -> bool:
        """Main-view keys do nothing while another screen is on top."""
        return len(self.screen_stack) == 1

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
        self.query_state = Query(statuses=q.statuses, search=text, sort=q.sort, limit=q.limit)
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
        self.query_state = Query(statuses=q.statuses, search=q.search, sort=sort, limit=q.limit)
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

    # ------------------------------------------------------------------ actions: tasks
    @on(TaskTable.Opened)
    def _row_opened(self, event: TaskTable.Opened) -> None:
        self.open_task(event.task_id)

    def open_task(self, task_id: str) -> None:
        screen = DetailScreen(task_id)
        self.push_screen(screen)
        screen.show(self.bridge.get(task_id), self.bridge.now())
        self.last_effect_at = time.perf_counter()

    def action_open_task(self) -> None:
        task_id = self._table.highlighted_id
        if task_id is None:
            self.notify("no task highlighted", severity="warning")
            return
        self.open_task(task_id)

    def action_submit(self) -> None:
        if not self._main_only() and not isinstance(self.screen, DetailScreen):
            return
        last_type, last_payload = self._last_submit or (None, "{}")
        self.push_screen(
            SubmitScreen(
                self.bridge.types(),
                self.bridge.check_payload,
                max_count=max(1, self.bridge.queue_room()),
                type_name=last_type,
                payload=last_payload,
            ),
            self._submit_chosen,
        )

    def _submit_chosen(self, request: SubmitRequest | None) -> None:
        if request is None:
            return
        self._last_submit = (request.spec.type, msgspec.json.encode(request.spec.payload).decode())
        self._submit(request)

    @work(group="engine-calls")
    async def _submit(self, request: SubmitRequest) -> None:
        try:
            tasks = await self.bridge.submit(request)
        except EngineError as exc:
            self.notify(str(exc), title="Not submitted", severity="error")
            return
        what = f"{len(tasks)} x {request.spec.type}" if len(tasks) > 1 else f"task {tasks[0].id}"
        self.notify(f"submitted {what}", title="Submitted")
        self._window_dirty = True
        self._apply_now()

    def action_cancel_task(self) -> None:
        if not self._main_only():
            return
        task_id = self._table.highlighted_id
        if task_id is None:
            self.notify("no task highlighted", severity="warning")
            return
        self.ask_cancel(task_id)

    def ask_cancel(self, task_id: str) -> None:
        task = self.bridge.get(task_id)
        if task is None:
            self.notify(f"task {task_id} is no longer tracked", severity="warning")
            return
        if task.status.final:
            self.notify(f"task {task_id} is already {task.status.value}", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._cancel(task_id)

        self.push_screen(
            ConfirmScreen(f"Cancel task {task_id} ({task.type}, {task.status.value})?"), answered
        )
        self.last_effect_at = time.perf_counter()

    @work(group="engine-calls")
    async def _cancel(self, task_id: str) -> None:
        try:
            task = await self.bridge.cancel(task_id)
        except EngineError as exc:
            self.notify(str(exc), title="Not cancelled", severity="warning")
            return
        self.notify(f"task {task_id} is {task.status.value}", title="Cancel")
        self._apply_now()

    @on(DetailScreen.CancelTask)
    def _detail_cancel(self, event: DetailScreen.CancelTask) -> None:
        self.ask_cancel(event.task_id)

    @on(DetailScreen.SubmitAgain)
    def _detail_retry(self, event: DetailScreen.SubmitAgain) -> None:
        self._retry(event.task_id)

    @work(group="engine-calls")
    async def _retry(self, task_id: str) -> None:
        try:
            task = await self.bridge.retry(task_id)
        except EngineError as exc:
            self.notify(str(exc), title="Not submitted", severity="error")
            return
        self.notify(f"submitted task {task.id} (again of {task_id})", title="Submitted")
        self._window_dirty = True
        self._apply_now()

    # ------------------------------------------------------------------ actions: pool
    def action_toggle_pause(self) -> None:
        if not self._main_only() and not isinstance(self.screen, DetailScreen):
            return
        state = self.bridge.toggle_pause()
        self.notify("dispatch paused" if state.paused else "dispatch resumed", title="Pool")
        self._apply_now()

    def _resize(self, lo: int | None = None, hi: int | None = None) -> None:
        try:
            state = self.bridge.resize(lo, hi)
        except EngineError as exc:
            self.notify(str(exc), title="Not resized", severity="error")
            return
        self.notify(f"min {state.min}, max {state.max} ({state.current} workers)", title="Pool")
        self._apply_now()

    def action_grow(self) -> None:
        if not self._main_only():
            return
        pool = self.bridge.pool()
        cap, _ = self.bridge.limits()
        if pool.min >= cap:
            self.notify(
                f"min workers is already task.max_concurrent_tasks ({cap})", severity="warning"
            )
            return
        self._resize(pool.min + 1, max(pool.max, pool.min + 1))

    def action_shrink(self) -> None:
        if not self._main_only():
            return
        pool = self.bridge.pool()
        if pool.min <= 0:
            self.notify("min workers is already 0", severity="warning")
            return
        self._resize(pool.min - 1, pool.max)

    def action_resize(self) -> None:
        if not self._main_only():
            return
        pool = self.bridge.pool()
        cap, _ = self.bridge.limits()

        def chosen(bounds: tuple[int, int] | None) -> None:
            if bounds is not None:
                self._resize(*bounds)

        self.push_screen(ResizeScreen(pool.min, pool.max, cap), chosen)

    # ------------------------------------------------------------------ quitting
    async def action_quit(self) -> None:
        self.request_quit()

    def action_help_quit(self) -> None:
        self.request_quit()

    def request_quit(self) -> None:
        """Stop dispatching; let running tasks finish (up to worker.shutdown_timeout)."""
        if self._quitting:
            return
        self._quitting = True
        self._quit_deadline = time.monotonic() + self.bridge.shutdown_timeout()
        self.bridge.pause()
        if not self.bridge.running_ids():
            self.exit(0)
            return
        self.push_screen(ShutdownScreen())
        self._shutdown_progress()

    def _shutdown_progress(self) -> None:
        running = self.bridge.running_ids()
        if not running:
            self.exit(0)
            return
        left = self._quit_deadline - time.monotonic()
        if left <= 0 and not self._forcing:
            self._force_quit()
            return
        screen = self.screen
        if not isinstance(screen, ShutdownScreen) or self._forcing:
            return
        shown = []
        for tid in running[:5]:
            task = self.bridge.get(tid)
            if task is not None:
                shown.append(f"  {tid}  {task.type}  {task.progress:.0f}%  {task.message or ''}")
        more = f"\n  … and {len(running) - 5} more" if len(running) > 5 else ""
        screen.set_status(
            f"Dispatch stopped. Waiting for {len(running)} running task(s) to finish "
            f"({left:.0f}s left of worker.shutdown_timeout):\n"
            + "\n".join(shown)
            + more
            + "\n\nPress q again to cancel them now."
        )

    @on(ShutdownScreen.Force)
    def _force_requested(self) -> None:
        self._force_quit()

    def _force_quit(self) -> None:
        if self._forcing:
            return
        self._forcing = True
        running = self.bridge.running_ids()
        if isinstance(self.screen, ShutdownScreen):
            self.screen.set_status(f"Cancelling {len(running)} running task(s)…")
        self._cancel_all(running)

    @work(group="shutdown", exclusive=True)
    async def _cancel_all(self, task_ids: list[str]) -> None:
        async def cancel_one(tid: str) -> None:
            with contextlib.suppress(EngineError):  # it finished meanwhile
                await self.bridge.cancel(tid, wait_s=CANCEL_ON_QUIT_S)

        with anyio.move_on_after(CANCEL_ON_QUIT_S + 1):
            async with anyio.create_task_group() as tg:
                for tid in task_ids:
                    tg.start_soon(cancel_one, tid)
        self.exit(0)

    # ------------------------------------------------------------------ keys and commands
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Hide main-view keys from the footer while a dialog or the detail view is up.
        if len(self.screen_stack) > 1 and action in _MAIN_ONLY_ACTIONS:
            return None
        return True

    def key_rows(self) -> list[KeyRow]:
        """Every binding, section by section, with the keys as currently bound."""
        rows: list[KeyRow] = []
        sections: list[tuple[str, Iterable[BindingType]]] = [
            ("Dashboard", self.BINDINGS),
            ("Dashboard", ClusterViews.BINDINGS),
            ("Task table", TaskTable.BINDINGS),
            ("Task detail", DetailScreen.BINDINGS),
            ("Submit form", SubmitScreen.BINDINGS),
            ("Resize form", ResizeScreen.BINDINGS),
            ("Confirm", ConfirmScreen.BINDINGS),
            ("Help", HelpScreen.BINDINGS),
            ("Instances", InstancesScreen.BINDINGS),
            ("Workers", WorkersScreen.BINDINGS),
            ("Quitting", ShutdownScreen.BINDINGS),
        ]
        for section, bindings in sections:
            for b in bindings:
                if not isinstance(b, Binding) or b.id is None:
                    continue
                keys = self._keymap_overrides.get(b.id, b.key)
                shown = ", ".join(
                    self.get_key_display(Binding(k.strip(), b.action)) for k in keys.split(",")
                )
                rows.append((section, shown, b.tooltip or b.description, b.id))
        rows.append(
            ("Everywhere", self.get_key_display(Binding("ctrl+p", "")), "Command palette", "-")
        )
        return rows

    def palette_commands(self) -> list[Command]:
        cmds: list[Command] = [
            ("Submit tasks", "Open the submit form", self.action_submit),
            ("Open highlighted task", "Show the task's detail view", self.action_open_task),
            ("Cancel highlighted task", "Cancel it (asks first)", self.action_cancel_task),
            ("Pause / resume dispatch", "Running tasks go on", self.action_toggle_pause),
            ("Add a worker", "Raise min workers by one", self.action_grow),
            ("Remove a worker", "Lower min workers by one", self.action_shrink),
            ("Resize the pool", "Set min and max workers", self.action_resize),
            ("Search tasks", "Filter the table by text", self.action_search),
            ("Clear search", "Show all matching tasks again", self.action_clear_search),
            ("Sort by next column", "Cycle the sort column", self.action_sort_next),
            ("Reverse sort order", "Ascending / descending", self.action_sort_reverse),
            ("Toggle log panel", "Show or hide the log", self.action_toggle_log),
            ("Toggle light / dark theme", "Switch themes", self.action_toggle_theme),
            ("Instances", "The cluster's instances, live", self.action_instances),
            ("Workers", "This instance's workers and their tasks", self.action_workers),
            ("Help: keys", "List every key", self.action_help),
            ("Quit", "Let running tasks finish, then stop", self.request_quit),
        ]
        for key, label, _ in FILTERS:
            cmds.append(
                (f"Filter: {label}", f"Show {label.lower()} tasks", _partial_filter(self, key))
            )
        return cmds


_MAIN_ONLY_ACTIONS = frozenset(
    {
        "cancel_task",
        "grow",
        "shrink",
        "resize",
        "search",
        "clear_search",
        "sort_next",
        "sort_reverse",
        "filter",
    }
)


def _partial_filter(app: DashboardApp, key: str) -> Callable[[], None]:
    return lambda: app.action_filter(key)


# ---------------------------------------------------------------------- entry point
def run_dashboard(cfg: Config) -> int:
    """`workerpool-tui` with no sub-command: the engine, the API side-car, the dashboard."""
    from ..logging import setup_logging
    from ..runtime import Runtime

    records = setup_logging(cfg.logger, dashboard=True)

    async def main() -> int:
        async with Runtime(cfg) as rt:

            def server_status() -> ServerStatus:
                server = rt.server
                if server is None:
                    return ServerStatus(error=rt.server_error or "not running")
                return ServerStatus(address=str(server.address), ws_clients=int(server.ws_clients))

            app = DashboardApp(
                rt.engine, records=records, server_status=server_status, keymap=dict(cfg.keymap)
            )
            try:
                await app.run_async()
            finally:
                app.bridge.close()
            if app.fatal_error is not None:
                print(f"error: {app.fatal_error}; stopped", file=sys.stderr)
                return EXIT_FATAL
            if rt.engine.pool_state().busy:
                print(f"workerpool-tui: stopping {rt.engine.pool_state().busy} running task(s)…")
            return app.return_code or 0

    try:
        code = asyncio.run(main())
    except StoreUnavailable as exc:  # the last changes could not be written at the end
        print(f"error: {exc}; the last changes were not stored", file=sys.stderr)
        return EXIT_FATAL
    return code
