"""The fast answers of the hot path hold to the general ones: a task's JSON
(``server/taskjson.py``) is the bytes of ``task_view`` encoded, for tasks in every state and
with every optional field; ``frame`` is the framing it replaced, byte for byte."""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec
import pytest

from workerpool_tui.core.models import Task, TaskError, TaskStatus, task_view
from workerpool_tui.server.answering import _date, _status_line, frame
from workerpool_tui.server.responses import Response
from workerpool_tui.server.schemas import TaskBatch, TaskList
from workerpool_tui.server.taskjson import batch_json, list_json, task_json

_encode = msgspec.json.Encoder().encode


def _task(**fields: Any) -> Task:
    base: dict[str, Any] = {"id": "0" * 31 + "1", "type": "default_task", "payload": {}}
    base.update(fields)
    return Task(**base)


def _result(value: Any) -> msgspec.Raw:
    return msgspec.Raw(_encode(value))


TASKS = [
    _task(),
    _task(created_at=1_764_000_000.123456),
    _task(payload={"n": 1, "nested": {"a": [1, 2.5, None, "é"]}}, priority=-3, timeout_s=0.25),
    _task(status=TaskStatus.RUNNING, started_at=1_764_000_001.9995, worker=7, progress=0.5),
    _task(
        status=TaskStatus.COMPLETED,
        created_at=1_764_000_000.0,
        started_at=1_764_000_000.5,
        finished_at=1_764_000_002.0004,
        result_json=_result({"ok": True, "values": [1, 2, 3]}),
        message="done",
        progress=1.0,
        attempts=1,
        worker=0,
    ),
    _task(status=TaskStatus.COMPLETED, result_json=_result("text"), finished_at=5.0),
    _task(
        status=TaskStatus.FAILED,
        error=TaskError("ValueError", "bad input", "Traceback (most recent call last): ..."),
        attempts=3,
        max_retries=2,
        finished_at=-1.25,  # before 1970
    ),
    _task(status=TaskStatus.FAILED, error=TaskError("timeout", "ran over 1s")),
    _task(status=TaskStatus.CANCELLED, retry_of="f" * 32, finished_at=1_764_000_003.25),
    _task(run_at=1_764_000_100.0, depends_on=("a" * 32, "b" * 32), unique_key="key-1"),
    _task(depends_on=(), instance="node-2", unique_until=1_764_000_200.0),
    _task(logs=deque(["first line", "second \u2603 line"]), logs_dropped=4),
    _task(logs=deque()),
    _task(message='quote " and \\ and \n newline', type="other_type"),
]


@pytest.mark.parametrize("task", TASKS, ids=range(len(TASKS)))
def test_task_json_is_the_views_bytes(task: Task) -> None:
    assert task_json(task) == _encode(task_view(task))


def test_batch_and_list_are_the_views_bytes() -> None:
    assert batch_json(TASKS) == _encode(TaskBatch([task_view(t) for t in TASKS]))
    assert batch_json([]) == _encode(TaskBatch([]))
    # A list leaves the log lines out.
    expected = _encode(TaskList([task_view(t, with_logs=False) for t in TASKS], 123))
    assert list_json(TASKS, 123) == expected
    assert b"first line" not in list_json(TASKS, 1)


def test_the_answer_does_not_share_the_tasks_lists() -> None:
    task = _task(logs=deque(["a"]), depends_on=("x" * 32,))
    before = task_json(task)
    assert task.logs is not None
    task.logs.append("b")
    assert task_json(task) != before
    assert task_json(_task()) == _encode(task_view(_task()))


def _general_frame(response: Response, head_only: bool = False) -> bytes:
    """``frame`` as it was before the hot path: a list of parts."""
    parts = [
        _status_line(response.status),
        b"content-type: %s\r\ncontent-length: %d\r\ndate: %s\r\n"
        % (response.content_type, len(response.body), _date.get()),
    ]
    for name, value in response.headers:
        parts.append(b"%s: %s\r\n" % (name, value))
    parts.append(b"connection: close\r\n\r\n" if response.close else b"\r\n")
    if not head_only and response.body:
        parts.append(response.body)
    return b"".join(parts)


@pytest.mark.parametrize(
    "response",
    [
        Response(200, b'{"status":"ok"}'),
        Response(201, b"{}", headers=[(b"location", b"/api/v1/tasks/abc")]),
        Response(204),
        Response(404, b"x", close=True),
        Response(599, b"unknown status", content_type=b"text/plain"),
        Response(429, b"{}", headers=[(b"retry-after", b"3"), (b"x-one", b"1")], close=True),
    ],
    ids=range(6),
)
@pytest.mark.parametrize("head_only", [False, True])
def test_frame_is_the_general_framing(
    response: Response, head_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One Date for both (a second could turn between the two calls).
    monkeypatch.setattr(_date, "get", lambda: b"Thu, 03 Dec 2026 17:00:00 GMT")
    assert frame(response, head_only) == _general_frame(response, head_only)
