"""Shown while quitting: what the dashboard is waiting for, and how to stop waiting."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class ShutdownScreen(ModalScreen[None]):
    """The app updates the status line; pressing the quit key again cancels the wait."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,ctrl+c,escape", "force", "Cancel running tasks now", id="shutdown.force"),
    ]

    class Force(Message):
        """Stop waiting: cancel the running tasks now."""

    def __init__(self) -> None:
        super().__init__()
        self._status = "stopping…"

    def compose(self) -> ComposeResult:
        with Vertical(id="shutdown-dialog", classes="dialog"):
            yield Label("Shutting down", classes="dialog-title")
            yield Static(self._status, id="shutdown-status")

    @property
    def status(self) -> str:
        return self._status

    def set_status(self, text: str) -> None:
        self._status = text
        if self.is_mounted:
            self.query_one("#shutdown-status", Static).update(text)

    def action_force(self) -> None:
        self.post_message(self.Force())
