"""The dashboard's bounded view of a cluster's tasks (cluster mode), without Textual."""

from __future__ import annotations

from workerpool_tui.core import Task, TaskStatus
from workerpool_tui.tui.shared_tasks import SharedTasks


def task(seq: int, status: TaskStatus = TaskStatus.COMPLETED, instance: str = "a") -> Task:
    return Task(
        id=f"{seq:016x}",
        type="default_task",
        payload={},
        status=status,
        seq=seq,
        created_at=1.0 * seq,
        instance=instance,
    )


def test_events_replace_a_tasks_record_and_reads_are_newest_first() -> None:
    view = SharedTasks(limit=10)
    view.replace([task(1), task(2, TaskStatus.RUNNING)])
    view.put([task(3, TaskStatus.PENDING), task(2, TaskStatus.COMPLETED, instance="b")])
    assert [t.seq for t in view.newest()] == [3, 2, 1]
    assert view.get(f"{2:016x}") is not None and view.get(f"{2:016x}").instance == "b"  # type: ignore[union-attr]
    assert [t.seq for t in view.newest(statuses=frozenset({TaskStatus.PENDING}))] == [3]
    assert view.counts[TaskStatus.COMPLETED] == 2 and view.counts[TaskStatus.RUNNING] == 0
    assert [t.seq for t in view.active()] == [3]


def test_the_view_stays_bounded_and_keeps_unfinished_tasks() -> None:
    view = SharedTasks(limit=100)
    view.put([task(1, TaskStatus.RUNNING)])
    view.put([task(n) for n in range(2, 1000)])
    assert len(view) <= 125  # trimmed back to the limit whenever it passes it by a quarter
    assert view.get(f"{1:016x}") is not None  # the oldest, but running: kept
    kept = [t.seq for t in view.newest()]
    assert kept[0] == 999 and kept == sorted(kept, reverse=True)
    view.replace([task(n) for n in range(500)])
    assert len(view) == 100 and min(t.seq for t in view.newest()) == 400
