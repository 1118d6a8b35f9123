"""A task survives the trip to a table row and back, field for field: directly, and
through the pipe to the writer process."""

from __future__ import annotations

import msgspec
from msgspec.structs import astuple

from workerpool_tui.core import store_layout as layout
from workerpool_tui.core.models import Task, TaskError, TaskStatus
from workerpool_tui.core.store_writer import _decode_batch, encode_batch


def _full_task() -> Task:
    task = Task(
        id="0123456789abcdef",
        type="gated",
        payload={"nested": {"list": [1, 2.5, "ü", None]}, "flag": True},
        status=TaskStatus.FAILED,
        priority=-3,
        progress=42.5,
        message="step 3/7",
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
    task.result = ["partial", {"n": 1}]  # kept as its JSON
    task.add_log("first")
    task.add_log("second")
    return task


def test_every_field_round_trips() -> None:
    task = _full_task()
    assert layout.task(layout.row(layout.task_fields(task))) == task


def test_every_field_round_trips_through_the_pipe() -> None:
    task = _full_task()
    batch = _decode_batch(encode_batch(7, [task], {3, 1}))
    assert (batch.upto, batch.gone) == (7, [1, 3])
    as_bound = [bytes(v) if isinstance(v, msgspec.Raw) else v for v in astuple(batch.tasks[0])]
    assert as_bound == layout.row(layout.task_fields(task))
    assert layout.task(as_bound) == task


def test_a_payload_msgpack_cannot_hold_is_kept_as_text() -> None:
    """Only a Python caller can submit such a payload (the API takes JSON)."""
    odd = object()
    task = Task(id="x", type="t", payload={"odd": odd}, status=TaskStatus.COMPLETED, seq=1)
    task.result = {"fine": True}
    back = layout.task(layout.row(layout.task_fields(task)))
    kept = {"unencodable_payload": repr({"odd": odd})}
    assert back.payload == kept and back.result == {"fine": True}
    fine = Task(id="y", type="t", payload={"a": 1}, seq=2)
    batch = _decode_batch(encode_batch(2, [task, fine], ()))
    backs = [layout.task(astuple(row)) for row in batch.tasks]
    assert backs[0].payload == kept and backs[1] == fine
