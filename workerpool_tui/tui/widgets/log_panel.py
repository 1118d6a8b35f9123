"""The log panel: the app's own log records, newest at the bottom, bounded."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

MAX_LINES = 1000

_LEVEL_STYLE = {
    "debug": "dim",
    "info": "",
    "warning": "bold yellow",
    "error": "bold red",
    "critical": "bold reverse red",
}


class LogPanel(RichLog):
    """Hidden until toggled; keeps the last ``MAX_LINES`` lines."""

    DEFAULT_CSS = """
    LogPanel {
        height: 10;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=MAX_LINES, wrap=False, markup=False, highlight=False)
        self.border_title = "Log"

    def add_lines(self, lines: Iterable[tuple[str, str]]) -> None:
        for level, line in lines:
            self.write(Text(line, style=_LEVEL_STYLE.get(level, "")))
