"""The task table's rows as text: the columns, one task's cells, fitting them to a width,
and drawing a row as a strip — pure functions, no widget (the widget is
:mod:`.task_table`)."""

from __future__ import annotations

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.theme import Theme

from ...core import Task
from ..view_model import short_id
from .cells import BAR_WIDTH, age_or_duration, progress_parts

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "ID", 8),
    ("type", "Type", 18),
    ("status", "Status", 9),
    ("progress", "Progress", 15),
    ("priority", "Prio", 5),
    ("age", "Age / took", 11),
    ("worker", "Worker", 6),
    ("message", "Message", 48),
)
COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)
_WIDTHS = tuple(width for _, _, width in COLUMNS)

_DIM = Style(dim=True)
INSTANCE_WIDTH = 16
"""Cluster mode: the instance's name leads the message column, cut to this width."""

Cells = tuple[str, ...]
"""The text of each column of one row."""


def row_cells(task: Task, now: float, cluster: bool) -> Cells:
    message = task.message or ""
    if cluster:
        message = f"{(task.instance or '-')[:INSTANCE_WIDTH]:<{INSTANCE_WIDTH}} {message}"
    return (
        short_id(task.id),
        task.type,
        task.status.value,
        progress_parts(task.progress),
        str(task.priority),
        age_or_duration(task, now),
        "-" if task.worker is None else str(task.worker),
        message,
    )


HEADER: Cells = tuple(label for _, label, _ in COLUMNS)
HEADER_CLUSTER: Cells = (*HEADER[:-1], f"{'Instance':<{INSTANCE_WIDTH}} {HEADER[-1]}")


def fit_cell(text: str, width: int) -> str:
    """``text`` cut or padded to exactly ``width`` cells, one space each side."""
    if text.isascii() and text.isprintable():
        return " " + text[:width].ljust(width) + " "
    if not text.isprintable():
        # A newline or other control character would break the line (or the terminal).
        text = "".join(c if c.isprintable() else " " for c in text)
    return " " + set_cell_size(text, width) + " "


ROW_WIDTH = sum(width + 2 for width in _WIDTHS)
"""Cells in a row's text: every column has a fixed width and one space each side."""


_ROW_FORMAT = "".join(f" {{:<{w}.{w}}} " for w in _WIDTHS)
"""Every cell cut or padded to its column, one space each side: for single-width text."""
_STATUS_AT = sum(w + 2 for w in _WIDTHS[:2])
_BAR_AT = _STATUS_AT + _WIDTHS[2] + 2 + 1
"""Where the status cell and the first cell of the progress bar start in a row's text."""


def row_text(cells: Cells) -> tuple[str, bool]:
    """The row's text, exactly :data:`ROW_WIDTH` cells, and whether its columns start at
    fixed offsets in the string (every character one cell wide: not so for, say, CJK)."""
    others = cells[:3] + cells[4:]  # the progress bar is single-width by construction
    joined = "".join(others)
    if joined.isascii() and joined.isprintable():
        return _ROW_FORMAT.format(*cells), True
    return "".join(fit_cell(c, w) for c, w in zip(cells, _WIDTHS, strict=True)), False


def row_strip(cells: Cells, base: Style, status: Style | None, width: int) -> Strip:
    """One row, exactly ``width`` cells, in five segments at most: plain cells are joined
    into one run of text (fewer segments are cheaper for the compositor too); status and
    the filled part of the progress bar take the status colour. Every cell has a known
    width, so nothing is measured."""
    text, fixed = row_text(cells)
    segments: list[Segment]
    if status is None:
        segments = [Segment(text, base)]
    else:
        head, status_cell, bar, tail = split_cells(text, fixed, cells)
        filled = bar.count("━")
        segments = [
            Segment(head, base),
            Segment(status_cell + bar[:filled], base + status),
            Segment(bar[filled:], base + _DIM),
            Segment(tail, base),
        ]
    if width >= ROW_WIDTH:
        if width > ROW_WIDTH:
            segments.append(Segment(" " * (width - ROW_WIDTH), base))
        return Strip(segments, width)
    return Strip(segments, ROW_WIDTH).crop(0, width)


def split_cells(text: str, fixed: bool, cells: Cells) -> tuple[str, str, str, str]:
    """``text`` as (id and type, status and the space before the bar, bar, the rest)."""
    if fixed:
        bar_end = _BAR_AT + BAR_WIDTH
        return text[:_STATUS_AT], text[_STATUS_AT:_BAR_AT], text[_BAR_AT:bar_end], text[bar_end:]
    widths = _WIDTHS
    progress = fit_cell(cells[3], widths[3])
    return (
        fit_cell(cells[0], widths[0]) + fit_cell(cells[1], widths[1]),
        fit_cell(cells[2], widths[2]) + progress[:1],
        progress[1 : 1 + BAR_WIDTH],
        progress[1 + BAR_WIDTH :]
        + "".join(fit_cell(cells[i], widths[i]) for i in range(4, len(cells))),
    )


def column_at(x: int) -> str | None:
    start = 0
    for key, _, width in COLUMNS:
        if start <= x < start + width + 2:
            return key
        start += width + 2
    return None


def status_styles(theme: Theme) -> dict[str, Style]:
    """The status column's colour for each status, from the theme."""
    return {
        "pending": Style.parse(theme.warning or "yellow"),
        "running": Style.parse(f"bold {theme.accent or theme.primary}"),
        "completed": Style.parse(theme.success or "green"),
        "failed": Style.parse(f"bold {theme.error or 'red'}"),
        "cancelled": Style(dim=True),
    }
