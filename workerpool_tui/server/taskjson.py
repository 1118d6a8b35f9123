"""A task's JSON answer, encoded straight from the engine's :class:`~..core.models.Task`.

The API answers with :class:`~..core.models.TaskView` (SPEC §4; the OpenAPI document
describes that struct). Building one takes 22 keyword arguments, which msgspec matches by
name, and then the view is encoded and dropped: on the hot path of ``POST /api/v1/tasks``
that was a tenth of the server's Python work. :class:`_Answer` has the same fields in the
same order, filled by position, and msgspec encodes it to the very same bytes (a test holds
the two to each other for tasks in every state, and :data:`_FIELDS` to ``TaskView``'s
fields at import time). The WebSocket and the dashboard keep using the view.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..core.models import Task, TaskView, rfc3339


class _Answer(msgspec.Struct, gc=False):
    """:class:`TaskView`'s fields, in its order, given by position (values as the view's)."""

    id: Any
    type: Any
    status: Any
    payload: Any
    priority: Any
    progress: Any
    message: Any
    result: Any
    error: Any
    attempts: Any
    max_retries: Any
    timeout_s: Any
    created_at: Any
    started_at: Any
    finished_at: Any
    worker: Any
    retry_of: Any
    run_at: Any
    instance: Any
    depends_on: Any
    unique_key: Any
    logs: Any


_FIELDS = msgspec.structs.fields(_Answer)
if [f.encode_name for f in _FIELDS] != [f.encode_name for f in msgspec.structs.fields(TaskView)]:
    raise AssertionError("taskjson._Answer must list TaskView's fields in TaskView's order")

_encode = msgspec.json.Encoder().encode
_NO_LIST: list[str] = []
"""Encodes as ``[]``; never mutated (the struct is only encoded)."""


def _answer(task: Task, with_logs: bool) -> _Answer:
    # The same values as task_view(): a tuple encodes as a list, None times stay None.
    started, finished, run_at, logs = task.started_at, task.finished_at, task.run_at, task.logs
    return _Answer(
        task.id,
        task.type,
        task.status,
        task.payload,
        task.priority,
        task.progress,
        task.message,
        task.result_json,
        task.error,
        task.attempts,
        task.max_retries,
        task.timeout_s,
        rfc3339(task.created_at),
        None if started is None else rfc3339(started),
        None if finished is None else rfc3339(finished),
        task.worker,
        task.retry_of,
        None if run_at is None else rfc3339(run_at),
        task.instance,
        task.depends_on or _NO_LIST,
        task.unique_key,
        list(logs) if (with_logs and logs) else _NO_LIST,
    )


def task_json(task: Task) -> bytes:
    """The JSON of ``task_view(task)``, without building the view."""
    return _encode(_answer(task, True))


class _Batch(msgspec.Struct, gc=False):
    tasks: list[_Answer]


class _List(msgspec.Struct, gc=False):
    tasks: list[_Answer]
    total: int


def batch_json(tasks: list[Task]) -> bytes:
    """The JSON of ``TaskBatch([task_view(t) for t in tasks])``."""
    return _encode(_Batch([_answer(t, True) for t in tasks]))


def list_json(tasks: list[Task], total: int) -> bytes:
    """The JSON of ``TaskList([task_view(t, with_logs=False) for t in tasks], total)``."""
    return _encode(_List([_answer(t, False) for t in tasks], total))
