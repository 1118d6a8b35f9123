"""A task survives the trip to a table row and back, field for field."""

from __future__ import annotations

from workerpool_tui.core.models import Task, TaskError, TaskStatus
from workerpool_tui.core.store import _row, _task


def test_every_field_round_trips() -> None:
    task = Task(
        id="0123456789abcdef",
        type="gated",
        payload={"nested": {"list": [1, 2.5, "ü", None]}, "flag": True},
        status=TaskStatus.FAILED,
        priority=-3,
        progress=42.5,
        message="step 3/7",
        result=["partial", {"n": 1}],
        error=TaskError("timeout", "timed out after 1.5s", "Traceback ...\n"),
        attempts=2,
        max_retries=3,
        timeout_s=1.5,
        created_at=1795873500.6255257,
        started_at=1795873501.0000001,
        finished_at=1795873502.9999999,
        worker=7,
        retry_of="fedcba9876543210",
        seq=123456,
    )
    task.add_log("first")
    task.add_log("second")
    assert _task(_row(task)) == task


def test_a_result_json_cannot_hold_is_kept_as_text() -> None:
    odd = object()
    task = Task(id="x", type="t", payload={}, status=TaskStatus.COMPLETED, result=odd, seq=1)
    back = _task(_row(task))
    assert back.result == repr(odd) and back.status is TaskStatus.COMPLETED
