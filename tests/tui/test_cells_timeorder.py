"""The table's time column for tasks that wait for a time or for parents (issue 12)."""

from __future__ import annotations

from workerpool_tui.core import Task
from workerpool_tui.tui.widgets.cells import age_or_duration


def test_a_delayed_task_shows_when_it_runs_and_a_blocked_one_says_so() -> None:
    now = 1_790_000_000.0
    task = Task(id="a", type="t", payload={}, created_at=now - 5, run_at=now + 250)
    assert age_or_duration(task, now) == "in 4m10s"
    task.run_at = None
    assert age_or_duration(task, now) == "wait 5.0s"
    task.blocked = 1
    assert age_or_duration(task, now) == "blocked"
