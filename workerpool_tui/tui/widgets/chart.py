"""A labelled sparkline: title, latest value and the last few minutes of one series."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline


class Chart(Vertical):
    """One series over time; ``data`` is fed by the app once per second."""

    DEFAULT_CSS = """
    Chart {
        height: 100%;
        padding: 0 1;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
    }
    Chart > Label {
        width: 100%;
        color: $text-muted;
    }
    Chart > Sparkline {
        height: 1fr;
    }
    """

    data: reactive[tuple[float, ...]] = reactive(tuple, always_update=False)
    """Oldest first."""

    def __init__(self, title: str, unit: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = title
        self._unit = unit

    def compose(self) -> ComposeResult:
        yield Label("no data yet")
        yield Sparkline([], summary_function=max)

    def watch_data(self, data: tuple[float, ...]) -> None:
        spark = self.query_one(Sparkline)
        spark.data = list(data) or [0.0]
        label = self.query_one(Label)
        if not data:
            label.update("no data yet")
            return
        label.update(
            f"now {_fmt(data[-1])} · peak {_fmt(max(data))} {self._unit} · last {len(data)}s"
        )

    def set_series(self, values: Sequence[float]) -> None:
        self.data = tuple(values)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
