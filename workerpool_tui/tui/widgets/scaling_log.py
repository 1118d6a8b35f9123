"""The scaling log: the pool's recent decisions (scale, resize, pause) with their reasons."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...core.stats import ScalingDecision


class ScalingLog(Widget):
    """Newest decision first; as many as fit."""

    DEFAULT_CSS = """
    ScalingLog {
        height: 100%;
        padding: 0 1;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    decisions: reactive[tuple[ScalingDecision, ...]] = reactive(tuple)
    """Oldest first, as the engine keeps them."""

    def on_mount(self) -> None:
        self.border_title = "Scaling decisions (UTC)"

    def render(self) -> Text:
        if not self.decisions:
            return Text("no scaling decisions yet", style="dim")
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, d in enumerate(reversed(self.decisions)):
            if i:
                out.append("\n")
            at = datetime.fromtimestamp(d.at, tz=timezone.utc).strftime("%H:%M:%S")
            out.append(at, style="dim")
            sign = f"{d.delta:+d}" if d.delta else " ·"
            out.append(f" {sign:>3} ", style="bold" if d.delta else "dim")
            out.append(f"→{d.current:<3} ", style="dim")
            out.append(d.reason)
        return out
