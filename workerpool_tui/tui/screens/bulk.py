"""Bulk actions in the dashboard: ``space`` marks rows, ``B`` opens a menu that acts on the
marked tasks, or (none marked) on every task of the current filter and search.

The menu shows, for each action, how many tasks it would change (a dry run of
``core/bulk.py``); choosing one asks for confirmation, then runs it. The table refreshes
from the summarising bulk event like every other client.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from ...core import EngineError
from ...core.bulk import Action, BulkFilter, bulk_summary
from ...core.bus import BulkEvent
from .confirm import ConfirmScreen

if TYPE_CHECKING:
    from textual.app import App

    from ..source import DashboardSource
    from ..view_model import Query
    from ..widgets.task_table import TaskTable

    _AppBase = App[int]
else:
    _AppBase = object

ACTIONS: tuple[tuple[Action, str, str], ...] = (
    ("cancel", "c", "Cancel"),
    ("retry", "r", "Retry"),
    ("delete", "d", "Delete"),
)
"""Each action, its key in the menu, and its label."""


class BulkScreen(ModalScreen[Action | None]):
    """The menu: what each action would change; dismisses with the chosen action."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "choose('cancel')", "Cancel them", id="bulk.cancel"),
        Binding("r", "choose('retry')", "Retry them", id="bulk.retry"),
        Binding("d", "choose('delete')", "Delete them", id="bulk.delete"),
        Binding("escape,q", "choose('')", "Close", tooltip="Do nothing", id="bulk.close"),
    ]

    def __init__(self, scope: str, counts: Mapping[Action, tuple[int, int]]) -> None:
        super().__init__()
        self._scope = scope
        self._counts = counts
        """``action: (would change, matched)``."""

    def compose(self) -> ComposeResult:
        with Vertical(id="bulk-dialog", classes="dialog"):
            yield Label(f"Bulk action on {self._scope}", id="bulk-scope")
            with Horizontal(classes="buttons"):
                for action, key, label in ACTIONS:
                    n, matched = self._counts[action]
                    yield Button(
                        f"{label} {n} of {matched} ({key})",
                        id=f"bulk-{action}",
                        disabled=n == 0,
                        variant="error" if action != "retry" else "primary",
                    )

    def action_choose(self, action: str) -> None:
        if action and self._counts.get(cast(Action, action), (0, 0))[0] == 0:
            return
        self.dismiss(action or None)  # type: ignore[arg-type]

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose((event.button.id or "").removeprefix("bulk-"))


class BulkActions(_AppBase):
    """The app's side: marks, the menu, the confirmation, the run (a mixin of the app)."""

    bridge: DashboardSource
    _table: TaskTable
    query_state: Query
    last_effect_at: float

    if TYPE_CHECKING:

        def _main_only(self) -> bool: ...
        def _apply_now(self) -> None: ...

    def _marks(self) -> set[str]:
        marks: set[str] | None = getattr(self, "_bulk_marks", None)
        if marks is None:
            marks = set()
            self._bulk_marks = marks
        return marks

    def action_toggle_mark(self) -> None:
        if not self._main_only():
            return
        task_id = self._table.highlighted_id
        if task_id is None:
            return
        marks = self._marks()
        marks.symmetric_difference_update({task_id})
        self._table.set_marked(frozenset(marks))
        self.last_effect_at = time.perf_counter()

    def action_bulk(self) -> None:
        if self._main_only():
            self._open_bulk()

    def _scope(self) -> tuple[BulkFilter, str]:
        marks = self._marks()
        if marks:
            return BulkFilter(ids=sorted(marks)), f"{len(marks)} marked task(s)"
        q = self.query_state
        statuses = sorted(q.statuses, key=lambda s: s.value) if q.statuses else None
        search = q.search.strip() or None
        parts = ["status " + ",".join(s.value for s in statuses)] if statuses else ["all tasks"]
        if search:
            parts.append(f"search {search!r}")
        return BulkFilter(status=statuses, q=search), "the filter: " + ", ".join(parts)

    @work(group="engine-calls")
    async def _open_bulk(self) -> None:
        flt, scope = self._scope()
        try:
            counts = {}
            for action, _, _ in ACTIONS:
                plan = await self.bridge.bulk(action, flt, dry_run=True)
                counts[action] = (plan.changed, plan.matched)
        except EngineError as exc:
            self.notify(str(exc), title="Bulk", severity="error")
            return

        def chosen(action: Action | None) -> None:
            if action is None:
                return
            n = counts[action][0]

            def answered(yes: bool | None) -> None:
                if yes:
                    self._run_bulk(action, flt)

            label = dict((a, lbl) for a, _, lbl in ACTIONS)[action]
            self.push_screen(ConfirmScreen(f"{label} {n} task(s) of {scope}?"), answered)

        self.push_screen(BulkScreen(scope, counts), chosen)
        self.last_effect_at = time.perf_counter()

    @work(group="engine-calls")
    async def _run_bulk(self, action: Action, flt: BulkFilter) -> None:
        try:
            result = await self.bridge.bulk(action, flt)
        except EngineError as exc:
            self.notify(str(exc), title="Bulk", severity="error")
            return
        event = BulkEvent(action, result.matched, result.changed, result.skipped)
        self.notify(bulk_summary(event), title="Bulk")
        self._marks().clear()
        self._table.set_marked(frozenset())
        self._apply_now()
