"""Status filter tabs: All, Pending, Running, Completed, Failed, Cancelled, Scheduled.

Scheduled is not a status: the pending tasks waiting for a time (the API's
``waiting=time``); it comes last so the digits of the statuses stay where they were."""

from __future__ import annotations

from textual.widgets import Tab, Tabs

from ...core import TaskStatus

FILTERS: tuple[tuple[str, str, TaskStatus | None], ...] = (
    ("all", "All", None),
    ("pending", "Pending", TaskStatus.PENDING),
    ("running", "Running", TaskStatus.RUNNING),
    ("completed", "Completed", TaskStatus.COMPLETED),
    ("failed", "Failed", TaskStatus.FAILED),
    ("cancelled", "Cancelled", TaskStatus.CANCELLED),
    ("scheduled", "Scheduled", TaskStatus.PENDING),
)

FILTER_WAITING: dict[str, str] = {"scheduled": "time"}
"""Filters that narrow their status to the tasks waiting for something (``waiting=``)."""


class FilterTabs(Tabs):
    """Clickable; the digit keys 1-7 select them too. Labels stay fixed (a label change
    costs a layout pass of the screen); the counts live in the stats bar."""

    can_focus = False

    DEFAULT_CSS = """
    FilterTabs {
        height: 2;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        tabs = [
            Tab(f"{i} {label}", id=f"filter-{key}") for i, (key, label, _) in enumerate(FILTERS, 1)
        ]
        super().__init__(*tabs, id=id)

    def _highlight_active(self, animate: bool = True) -> None:
        # No sliding underline: the slide redraws for 0.3 s on every filter change, and a
        # dashboard under load has better uses for those frames (and is calmer without).
        super()._highlight_active(animate=False)
