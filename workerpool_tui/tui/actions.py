"""What the dashboard's keys do to tasks and to the pool (a mixin of the app).

Each action checks where it may act (most act on the main view only), calls the engine
through the source (:mod:`.source`; awaited in an ``engine-calls`` worker, since a remote
source crosses the network), tells the user what happened, and applies its effect at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import msgspec
from textual import work

from ..core import EngineError
from .screens.confirm import ConfirmScreen
from .screens.detail import DetailScreen
from .screens.resize import ResizeScreen
from .screens.submit import SubmitScreen
from .source import DashboardSource
from .view_model import SubmitRequest
from .widgets.task_table import TaskTable

FOLLOW_S = 1.0
"""Attached: how often an open detail view reads its task's log lines."""

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[int]
else:
    _AppBase = object


class Actions(_AppBase):
    bridge: DashboardSource
    _table: TaskTable
    _window_dirty: bool
    _last_submit: tuple[str, str] | None
    last_effect_at: float

    if TYPE_CHECKING:

        def _apply_now(self) -> None: ...

    def _main_only(self) -> bool:
        """Main-view keys do nothing while another screen is on top."""
        return len(self.screen_stack) == 1

    # ------------------------------------------------------------------ tasks
    def open_task(self, task_id: str) -> None:
        screen = DetailScreen(task_id, self.bridge.relatives)
        self.push_screen(screen)
        screen.show(self.bridge.get(task_id), self.bridge.now())
        self.last_effect_at = time.perf_counter()
        if self.bridge.remote:
            self._follow_task(screen)

    @work(group="detail-follow", exclusive=True)
    async def _follow_task(self, screen: DetailScreen) -> None:
        """Attached: the task's log lines are not in the stream; read the whole task now
        and every :data:`FOLLOW_S` while its detail is open (until it ended)."""
        while screen in self.screen_stack:
            try:
                await self.bridge.refresh_task(screen.task_id)
            except EngineError:
                pass  # the server is away (the header says so): try again
            else:
                self._apply_now()
                task = self.bridge.get(screen.task_id)
                if task is not None and task.status.final:
                    return
            await anyio.sleep(FOLLOW_S)

    def action_open_task(self) -> None:
        task_id = self._table.highlighted_id
        if task_id is None:
            self.notify("no task highlighted", severity="warning")
            return
        self.open_task(task_id)

    async def action_submit(self) -> None:
        if not self._main_only() and not isinstance(self.screen, DetailScreen):
            return
        last_type, last_payload = self._last_submit or (None, "{}")
        # Awaited: keys typed right after ``n`` wait in the app's queue until the form is
        # mounted and focused, instead of reaching a screen with no focused field.
        await self.push_screen(
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

    # ------------------------------------------------------------------ the pool
    def action_toggle_pause(self) -> None:
        if not self._main_only() and not isinstance(self.screen, DetailScreen):
            return
        self._set_paused(not self.bridge.paused())

    @work(group="engine-calls")
    async def _set_paused(self, paused: bool) -> None:
        try:
            state = await self.bridge.set_paused(paused)
        except EngineError as exc:
            self.notify(str(exc), title="Pool", severity="error")
            return
        self.notify("dispatch paused" if state.paused else "dispatch resumed", title="Pool")
        self.refresh_bindings()  # the footer says Resume while paused, Pause otherwise
        self._apply_now()

    def action_pause(self) -> None:
        self.action_toggle_pause()

    def action_resume(self) -> None:
        self.action_toggle_pause()

    @work(group="engine-calls")
    async def _resize(self, lo: int | None = None, hi: int | None = None) -> None:
        try:
            state = await self.bridge.resize(lo, hi)
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
