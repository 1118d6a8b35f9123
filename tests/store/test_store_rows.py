"""A task survives the trip through the pipe to the writer process, into a table row and
back, field for field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from msgspec.structs import astuple

from workerpool_tui.core.admission import check_payload
from workerpool_tui.core.errors import InvalidRequest
from workerpool_tui.core.models import Task, TaskError, TaskStatus
from workerpool_tui.store import sqlite_layout as layout
from workerpool_tui.store.sqlite_writer import _decode_batch, encode_batch


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value (integers beyond 64 bits included: admission decides)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )


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


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.text(), json_values(), max_size=5))
def test_every_admitted_payload_round_trips_exactly(payload: dict[str, Any]) -> None:
    """What admission lets in is what the store gives back (issue #15 §2): no substitute."""
    try:
        check_payload(payload)
    except InvalidRequest:
        assume(False)
    task = Task(id="x", type="t", payload=payload, seq=1)
    (back,) = _through_the_pipe(task)
    assert back.payload == payload
    assert msgspec.json.encode(back.payload) == msgspec.json.encode(payload)


def test_a_payload_admission_refuses_is_never_written_as_something_else() -> None:
    task = Task(id="x", type="t", payload={"x": 2**64}, seq=1)
    with pytest.raises(OverflowError):
        encode_batch(1, [task], ())
