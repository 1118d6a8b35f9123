"""The resize form: min and max workers, checked as you type."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class ResizeScreen(ModalScreen[tuple[int, int] | None]):
    """Dismisses with ``(min_workers, max_workers)`` or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", tooltip="Close without resizing", id="resize.cancel"),
    ]

    def __init__(self, min_workers: int, max_workers: int, cap: int) -> None:
        super().__init__()
        self._min = min_workers
        self._max = max_workers
        self._cap = cap

    def compose(self) -> ComposeResult:
        with Vertical(id="resize-dialog", classes="dialog"):
            yield Label("Resize the pool", classes="dialog-title")
            with Horizontal(classes="fields"):
                with Vertical():
                    yield Label("Min workers", classes="field-label")
                    yield Input(str(self._min), id="resize-min", type="integer")
                with Vertical():
                    yield Label(f"Max workers (≤ {self._cap})", classes="field-label")
                    yield Input(str(self._max), id="resize-max", type="integer")
            yield Label("", id="resize-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Apply", id="resize-ok", variant="primary")
                yield Button("Cancel", id="resize-cancel")

    def on_mount(self) -> None:
        self.query_one("#resize-min", Input).focus()

    def _validate(self) -> tuple[int, int] | None:
        error = ""
        values: list[int] = []
        for name, wid in (("min workers", "#resize-min"), ("max workers", "#resize-max")):
            text = self.query_one(wid, Input).value.strip()
            try:
                values.append(int(text))
            except ValueError:
                error = f"{name} must be a whole number"
                break
        if not error:
            lo, hi = values
            if lo < 0:
                error = "min workers must not be negative"
            elif hi < 1:
                error = "max workers must be at least 1"
            elif lo > hi:
                error = f"min workers ({lo}) must not exceed max workers ({hi})"
            elif hi > self._cap:
                error = f"max workers must not exceed task.max_concurrent_tasks ({self._cap})"
        self.query_one("#resize-error", Label).update(error)
        self.query_one("#resize-ok", Button).disabled = bool(error)
        return None if error else (values[0], values[1])

    @on(Input.Changed)
    def _changed(self) -> None:
        self._validate()

    @on(Button.Pressed, "#resize-ok")
    @on(Input.Submitted)
    def _apply(self) -> None:
        result = self._validate()
        if result is not None:
            self.dismiss(result)

    @on(Button.Pressed, "#resize-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
