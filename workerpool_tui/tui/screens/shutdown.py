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

    def compose(self) -> ComposeResult:
        with Vertical(id="shutdown-dialog", classes="dialog"):
            yield Label("Shutting down", classes="dialog-title")
            yield Static("stopping…", id="shutdown-status")

    def set_status(self, text: str) -> None:
        self.query_one("#shutdown-status", Static).update(text)

    def action_force(self) -> None:
        self.post_message(self.Force())
