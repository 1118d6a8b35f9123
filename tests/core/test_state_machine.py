"""The task state machine of SPEC §4: every legal and every illegal transition."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from workerpool_tui.core.models import (
    FINAL_STATUSES,
    IllegalTransition,
    Task,
    TaskStatus,
    rfc3339,
    task_view,
)

P, R, C, F, X = (
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.COMPLETED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
)

#: SPEC §4: pending → running → completed | failed | cancelled; pending → cancelled;
#: running → pending only for a retry. Nothing leaves a final status.
LEGAL = {(P, R), (P, X), (R, C), (R, F), (R, X), (R, P)}
ALL_PAIRS = list(itertools.product(TaskStatus, TaskStatus))


def _task(status: TaskStatus) -> Task:
    return Task(id="t1", type="default_task", payload={}, status=status)


@pytest.mark.parametrize(("old", "new"), sorted(LEGAL))
def test_legal_transition_moves_and_returns_old(old: TaskStatus, new: TaskStatus) -> None:
    task = _task(old)
    assert task.transition(new) is old
    assert task.status is new


@pytest.mark.parametrize(("old", "new"), [pair for pair in ALL_PAIRS if pair not in LEGAL], ids=str)
def test_illegal_transition_raises_and_changes_nothing(old: TaskStatus, new: TaskStatus) -> None:
    task = _task(old)
    before = msgspec.structs.asdict(task)
    with pytest.raises(IllegalTransition, match=f"{old.value} -> {new.value}"):
        task.transition(new)
    assert msgspec.structs.asdict(task) == before


def test_final_statuses_are_exactly_the_three() -> None:
    assert {C, F, X} == FINAL_STATUSES
    assert [s for s in TaskStatus if s.final] == [C, F, X]


def test_a_whole_retrying_life() -> None:
    task = _task(P)
    for step in (R, P, R, P, R, F):
        task.transition(step)
    assert task.status is F


def test_task_view_is_the_wire_form() -> None:
    task = Task(
        id="abc",
        type="default_task",
        payload={"k": 1},
        created_at=1_790_000_000.1234,
        started_at=None,
    )
    task.add_log("one")
    view = task_view(task)
    wire = msgspec.json.decode(msgspec.json.encode(view))
    assert wire["id"] == "abc"
    assert wire["status"] == "pending"
    assert wire["created_at"] == "2026-09-21T14:13:20.123Z"
    assert wire["started_at"] is None
    assert wire["logs"] == ["one"]
    assert task_view(task, with_logs=False).logs == []
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"


def test_task_log_is_bounded() -> None:
    from workerpool_tui.core.models import TASK_LOG_LINES

    task = _task(R)
    for i in range(TASK_LOG_LINES + 10):
        task.add_log(f"line {i}")
    assert task.logs is not None
    assert len(task.logs) == TASK_LOG_LINES
    assert task.logs[0] == "line 10"
