"""Quitting (a mixin of the app): stop dispatching, let running tasks finish, or cancel them.

``q`` pauses dispatch and waits for running tasks up to ``worker.shutdown_timeout`` on a
:class:`ShutdownScreen` the tick keeps up to date; ``q`` again (or the deadline) cancels
them, each cancel bounded by :data:`CANCEL_ON_QUIT_S`. Attached to a server
(``workerpool-tui attach``), ``q`` leaves at once: the server keeps running its tasks.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import anyio
from textual import work

from ..core import EngineError
from .screens.shutdown import ShutdownScreen
from .source import DashboardSource

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[int]
else:
    _AppBase = object

CANCEL_ON_QUIT_S = 10.0


class Quitting(_AppBase):
    bridge: DashboardSource
    _quitting: bool = False
    _quit_deadline: float = 0.0
    _forcing: bool = False

    async def action_quit(self) -> None:
        self.request_quit()

    def action_help_quit(self) -> None:
        self.request_quit()

    def request_quit(self) -> None:
        """Stop dispatching; let running tasks finish (up to worker.shutdown_timeout)."""
        if self._quitting:
            return
        self._quitting = True
        if self.bridge.remote:  # attached: the server and its tasks carry on
            self.exit(0)
            return
        self._quit_deadline = time.monotonic() + self.bridge.shutdown_timeout()
        self.bridge.stop_dispatch()
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
