"""The dashboard's views of where work runs, and of the engine's health (a mixin of the app).

:class:`ClusterViews` gives the dashboard the Instances screen (``I``), the
Workers screen (``W``), the "degraded" mark in the header while the store cannot reach
its database, the cluster's task view kept fresh (cluster mode), and the fatal exit: when
a component of the engine fails for good the dashboard shows the reason, leaves with
status :data:`EXIT_FATAL` and ``run_dashboard`` prints the reason (never a hang).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from textual import work

from .screens.instances import InstancesScreen
from .screens.schedules import SchedulesScreen
from .screens.workers import WorkersScreen
from .source import DashboardSource

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[int]
else:
    _AppBase = object

EXIT_FATAL = 1
"""The dashboard's exit status after the engine failed for good (as ``serve``'s)."""
SHARED_REFRESH_S = 5.0
"""Cluster mode: a fresh snapshot of the cluster's tasks at least this often (events
patch it in between)."""
VIEW_HIDDEN_ACTIONS = frozenset({"submit", "toggle_pause", "pause", "resume", "toggle_log"})
"""The app's keys that do nothing on the Instances and Workers screens (out of their footer)."""
_logger = logging.getLogger("workerpool_tui.tui")


class ClusterViews(_AppBase):
    """A mixin of the app (its keys are in :mod:`.keys`)."""

    bridge: DashboardSource
    fatal_error: str | None = None
    """Why the engine stopped for good (the dashboard then exits with EXIT_FATAL)."""
    degraded: str | None = None
    """Why the engine is degraded now, as shown in the header."""
    _shared_at = 0.0

    # ------------------------------------------------------------------ screens
    def action_instances(self) -> None:
        if not self._view_may_open():
            return
        self.push_screen(InstancesScreen(self.bridge.instances))

    def action_workers(self) -> None:
        if not self._view_may_open():
            return
        bridge = self.bridge
        self.push_screen(
            WorkersScreen(
                bridge.worker_infos,
                bridge.now,
                instance=bridge.instance_name(),
                processes=bridge.process_infos if bridge.has_processes() else None,
                refresh=bridge.refresh_workers,
            )
        )

    def action_schedules(self) -> None:
        if not self._view_may_open():
            return
        bridge = self.bridge
        self.push_screen(SchedulesScreen(bridge.schedules(), bridge.now, bridge.task_types))

    def _view_may_open(self) -> bool:
        """From the main view, or from the other view screen (which it replaces)."""
        if self.on_a_view_screen():
            self.pop_screen()
            return True
        return len(self.screen_stack) == 1

    def on_a_view_screen(self) -> bool:
        """The Instances, Workers or Schedules screen is on top."""
        return isinstance(self.screen, (InstancesScreen, WorkersScreen, SchedulesScreen))

    def on_workers_screen_open_task(self, event: WorkersScreen.OpenTask) -> None:
        self.open_task(event.task_id)

    if TYPE_CHECKING:

        def open_task(self, task_id: str) -> None: ...

    # ------------------------------------------------------------------ health
    def watch_engine(self) -> None:
        """Start following the engine's health (called once the app is mounted)."""
        name = self.bridge.instance_name()
        self.sub_title = f"instance {name} (cluster)" if name else ""
        self._run_source()
        self._wait_fatal()
        self.check_health(force=True)

    @work(group="source", exclusive=True)
    async def _run_source(self) -> None:
        """Feed the source (an attached dashboard's connection lives here)."""
        await self.bridge.run()

    @work(group="engine-fatal", exclusive=True)
    async def _wait_fatal(self) -> None:
        try:
            reason = await self.bridge.wait_fatal()
        except RuntimeError:  # an engine that is not running (snapshot baselines)
            return
        self.fatal_error = reason
        if self.bridge.remote:  # attached: the server refused us (the token)
            self.notify(reason, title="Refused", severity="error")
        _logger.critical("dashboard: %s; stopping", reason)
        self.exit(EXIT_FATAL, return_code=EXIT_FATAL)

    def check_health(self, *, force: bool = False) -> None:
        """Mark the header while the engine is degraded (say so once when it starts and
        when it ends); in cluster mode, refresh the task view when it is due."""
        bridge = self.bridge
        connection = bridge.connection()
        if connection is not None and connection != self.sub_title:
            self.sub_title = connection  # attached: the connection's state
        reason = bridge.degraded()
        if reason != self.degraded or force:
            was, self.degraded = self.degraded, reason
            name = bridge.instance_name()
            where = f"instance {name} (cluster)" if name else ""
            if reason is not None:
                self.sub_title = f"DEGRADED: {reason}" + (f" · {where}" if where else "")
                self.notify(reason, title="Degraded", severity="error", timeout=10)
            else:
                self.sub_title = where
                if was is not None:
                    self.notify("the store works again", title="Recovered")
        if bridge.shared is not None and (
            bridge.shared_stale or time.monotonic() - self._shared_at >= SHARED_REFRESH_S
        ):
            self._shared_at = time.monotonic()
            self._refresh_shared()

    @work(group="shared-refresh", exclusive=True)
    async def _refresh_shared(self) -> None:
        try:
            await self.bridge.refresh_shared()
        except Exception as exc:  # the store is away: the header says so; try again later
            _logger.warning("dashboard: cannot read the cluster's tasks: %s", exc)
            self.bridge.shared_stale = True
