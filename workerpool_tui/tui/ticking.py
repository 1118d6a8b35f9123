"""The steady tick (a mixin of the app): what the source says changed, applied to the widgets.

The app never waits on its source. A timer ticks :data:`TICK_HZ` times a second; each tick
takes the source's folded changes (:meth:`~.source.DashboardSource.take`, which never
waits, whether the bus or the WebSocket stream feeds it) and applies them inside
``batch_update()``, so the screen moves at a calm, steady rate however fast the engine
runs. A key press applies its effect at once (:meth:`Ticking._apply_now`), not on the
next tick.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from .screens.detail import DetailScreen
from .source import DashboardSource
from .view_model import Changes, Query
from .widgets.chart import Chart
from .widgets.filter_tabs import FILTERS
from .widgets.log_panel import LogPanel
from .widgets.scaling_log import ScalingLog
from .widgets.stats_bar import StatsBar, StatsLine
from .widgets.task_table import TaskTable

if TYPE_CHECKING:
    from textual.app import App

    from ..core import Task

    _AppBase = App[int]
else:
    _AppBase = object

TICK_HZ = 10
SLOW_QUERY_S = 0.5
"""A window query that scans every task (search, non-default sort) runs at most this often."""
DEEP_OFFSET = 2_000
"""A window further down the list than this is fetched at most every SLOW_QUERY_S."""


class Ticking(_AppBase):
    bridge: DashboardSource
    query_state: Query
    tick_times: deque[float]
    last_effect_at: float
    _table: TaskTable
    _stats_bar: StatsBar
    _scaling: ScalingLog
    _log_panel: LogPanel
    _charts: tuple[Chart, Chart, Chart]
    _filter_key: str
    _window: list[Task]
    _window_total: int
    _window_dirty: bool
    _last_slow_query: float
    _ticks: int
    _behind: bool
    _stats_line: StatsLine | None
    _paused_shown: bool
    _freeze_timing: bool
    _quitting: bool

    if TYPE_CHECKING:

        def check_health(self, *, force: bool = False) -> None: ...
        def _shutdown_progress(self) -> None: ...

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
        if sampled or ch.pool:
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
