"""A labelled sparkline: title, latest value and the last few minutes of one series."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Sparkline


class _Caption(Widget):
    """One line of text whose changes never trigger a layout pass (``Label.update`` does)."""

    DEFAULT_CSS = """
    _Caption {
        height: 1;
        width: 100%;
        color: $text-muted;
    }
    """

    text: reactive[str] = reactive("", layout=False)

    def render(self) -> str:
        return self.text


class Chart(Vertical):
    """One series over time; ``data`` is fed by the app once per second."""

    DEFAULT_CSS = """
    Chart {
        height: 100%;
        padding: 0 1;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
    }
    Chart > Sparkline {
        height: 1fr;
    }
    """

    data: reactive[tuple[float, ...]] = reactive(tuple, always_update=False)
    """Oldest first."""

    def __init__(self, title: str, unit: str, *, span: int = 180, id: str | None = None) -> None:
        super().__init__(id=id)
        self._span = span
        self._label = _Caption()
        self._label.text = "no data yet"
        self._spark = Sparkline([], summary_function=max)
        self.border_title = title
        self._unit = unit

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._spark

    def watch_data(self, data: tuple[float, ...]) -> None:
        spark = self._spark
        # Left-padded to the full span, so the line fills in from the right as time passes.
        # The sparkline scales from the lowest value to the highest; a leading 0 makes the
        # scale start at 0 (a steady 8 workers is a full bar, not nothing). Each column
        # shows the largest value of its bucket, so that 0 stays out of sight.
        spark.data = [0.0] * (1 + max(0, self._span - len(data))) + list(data[-self._span :])
        label = self._label
        if not data:
            label.text = "no data yet"
            return
        label.text = f"now {_fmt(data[-1])} · peak {_fmt(max(data))}"

    def set_series(self, values: Sequence[float]) -> None:
        self.data = tuple(values)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
