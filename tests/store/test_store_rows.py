"""A task survives the trip through the pipe to the writer process, into a table row and
back, field for field."""

from __future__ import annotations

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


def _through_the_pipe(*tasks: Task) -> list[Task]:
    """Tasks as the loop encodes them and the writer binds them, read back as loading does."""
    batch = _decode_batch(encode_batch(1, tasks, ()))
    return [layout.task(astuple(row)) for row in batch.tasks]  # Raw binds as bytes do


def test_every_field_round_trips() -> None:
    task = _full_task()
    assert _through_the_pipe(task) == [task]
    batch = _decode_batch(encode_batch(7, [task], {3, 1}))
    assert (batch.upto, batch.gone) == (7, [1, 3])
    assert (batch.tasks[0].seq, batch.tasks[0].status) == (task.seq, "failed")


def test_a_payload_msgpack_cannot_hold_is_kept_as_text() -> None:
    """Only a Python caller can submit such a payload (the API takes JSON)."""
    odd = object()
    task = Task(id="x", type="t", payload={"odd": odd}, status=TaskStatus.COMPLETED, seq=1)
    task.result = {"fine": True}
    fine = Task(id="y", type="t", payload={"a": 1}, seq=2)
    back, back_fine = _through_the_pipe(task, fine)
    assert back.payload == {"unencodable_payload": repr({"odd": odd})}
    assert back.result == {"fine": True} and back_fine == fine
