"""Command palette entries for every dashboard action (Ctrl+P)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .app import DashboardApp

Command = tuple[str, str, Callable[[], object]]
"""(title, help, callback)"""


class DashboardCommands(Provider):
    """Scores the dashboard's commands with the palette's fuzzy matcher."""

    def _commands(self) -> list[Command]:
        app: DashboardApp = self.app  # type: ignore[assignment]
        return app.palette_commands()

    async def discover(self) -> Hits:
        for title, help_, callback in self._commands():
            yield DiscoveryHit(title, partial(_call, callback), help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(_call, callback), title, help_)


def _call(callback: Callable[[], object]) -> object:
    return callback()  # the palette awaits what a coroutine action returns
