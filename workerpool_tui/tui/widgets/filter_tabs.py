"""Status filter tabs: All, Pending, Running, Completed, Failed, Cancelled, with counts."""

from __future__ import annotations

from textual.widgets import Tab, Tabs

from ...core import TaskStatus
from ...core.engine import TaskCounts

FILTERS: tuple[tuple[str, str, TaskStatus | None], ...] = (
    ("all", "All", None),
    ("pending", "Pending", TaskStatus.PENDING),
    ("running", "Running", TaskStatus.RUNNING),
    ("completed", "Completed", TaskStatus.COMPLETED),
    ("failed", "Failed", TaskStatus.FAILED),
    ("cancelled", "Cancelled", TaskStatus.CANCELLED),
)


class FilterTabs(Tabs):
    """Clickable; the digit keys 1-6 of the app select them too."""

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
        self._counts: TaskCounts | None = None

    def set_counts(self, counts: TaskCounts) -> None:
        if counts == self._counts:
            return
        self._counts = counts
        for i, (key, label, status) in enumerate(FILTERS, 1):
            n = counts.total if status is None else getattr(counts, status.value)
            self.query_one(f"#filter-{key}", Tab).label = f"{i} {label} {n:,}"
