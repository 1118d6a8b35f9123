"""Tasks to rows and back, for the cluster's ``tasks`` table.

Writes go in batches as one statement each, the whole batch one JSON parameter
(``json_to_recordset``): a thousand tasks are one statement and one round trip, the
statement text is the same for every batch size (so PostgreSQL prepares it once), and the
parameter is one msgspec call.
JSON columns travel as text: the payload as the JSON it arrived as, the result as the
JSON the handler's value was encoded to once (``Task.result_json``), read back without
being parsed twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec

from ...core.models import TASK_LOG_LINES, Task, TaskError, TaskStatus

_encode = msgspec.json.Encoder().encode
_decode_payload = msgspec.json.Decoder(dict[str, Any]).decode
_decode_error = msgspec.json.Decoder(TaskError).decode
_decode_logs = msgspec.json.Decoder(list[str]).decode
_STATUS = {s.value: s for s in TaskStatus}

COLUMNS = (
    "seq, id, type, status, priority, payload::text, progress, message, result::text,"
    " error::text, attempts, max_retries, timeout_s, created_at, started_at, finished_at,"
    " run_at, worker, instance, retry_of, logs::text, depends_on, unique_key, unique_until,"
    " blocked"
)
"""What a read selects, in the order :func:`task` takes."""


def task(row: Sequence[Any]) -> Task:
    """A :class:`Task` from a row of :data:`COLUMNS`."""
    (
        seq,
        id_,
        type_,
        status,
        priority,
        payload,
        progress,
        message,
        result,
        error,
        attempts,
        max_retries,
        timeout_s,
        created_at,
        started_at,
        finished_at,
        run_at,
        worker,
        instance,
        retry_of,
        logs,
        depends_on,
        unique_key,
        unique_until,
        blocked,
    ) = row
    return Task(
        id=id_,
        type=type_,
        payload=_decode_payload(payload),
        status=_STATUS[status],
        priority=priority,
        progress=progress,
        message=message,
        result_json=None if result is None else msgspec.Raw(result.encode()),
        error=None if error is None else _decode_error(error),
        attempts=attempts,
        max_retries=max_retries,
        timeout_s=timeout_s,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        worker=worker,
        retry_of=retry_of,
        seq=seq,
        logs=deque(_decode_logs(logs), maxlen=TASK_LOG_LINES) if logs else None,
        run_at=run_at,
        instance=instance,
        depends_on=tuple(depends_on) if depends_on else None,
        unique_key=unique_key,
        unique_until=unique_until,
        blocked=blocked,
    )


INSERT = """
INSERT INTO {s}.tasks (id, type, status, priority, payload, max_retries, timeout_s,
                       created_at, run_at, retry_of, depends_on, unique_key, unique_until,
                       blocked)
SELECT v.id, v.type, 'pending', v.priority, v.payload, v.max_retries, v.timeout_s,
       v.created_at, v.run_at, v.retry_of, v.depends_on, v.unique_key, v.unique_until,
       -- parents not completed yet (those of this batch are not visible yet: waited for);
       -- looked up by id, parent by parent, and only for a task that has parents: left to
       -- itself the planner read every finished task (tasks_finished) for every new row.
       CASE WHEN v.depends_on IS NULL THEN 0 ELSE cardinality(v.depends_on) - (
           SELECT count(*) FROM unnest(v.depends_on) AS d(id)
           JOIN {s}.tasks p ON p.id = d.id COLLATE "C"
           WHERE p.status = 'completed'
       ) END
FROM json_to_recordset(%s::json)
     AS v(id text, type text, priority int, payload json, max_retries int, timeout_s float8,
          created_at float8, run_at float8, retry_of text, depends_on text[],
          unique_key text, unique_until float8)
RETURNING id, seq
"""
LOCK_PARENTS = "SELECT 1 FROM {s}.tasks WHERE id = ANY(%s::text[]) FOR SHARE"
"""Taken before inserting children: a parent ending meanwhile waits for this transaction,
so its trigger sees the children (and one that ended before is seen as ended)."""
"""New tasks: one statement, and one parameter: the batch as one JSON array that msgspec
encodes in C (twelve Python-built arrays cost several times as much), payloads inside it
as the JSON they are."""


class _NewRow(msgspec.Struct):
    id: str
    type: str
    priority: int
    payload: dict[str, Any]
    max_retries: int
    timeout_s: float
    created_at: float
    run_at: float | None
    retry_of: str | None
    depends_on: tuple[str, ...] | None
    unique_key: str | None
    unique_until: float | None


def insert_params(tasks: Sequence[Task]) -> tuple[str]:
    """The parameter of :data:`INSERT` for new tasks."""
    return (
        _encode(
            [
                _NewRow(
                    t.id,
                    t.type,
                    t.priority,
                    t.payload,
                    t.max_retries,
                    t.timeout_s,
                    t.created_at,
                    t.run_at,
                    t.retry_of,
                    t.depends_on,
                    t.unique_key,
                    t.unique_until,
                )
                for t in tasks
            ]
        ).decode(),
    )


UPDATE = """
UPDATE {s}.tasks AS t SET
    status = v.status, progress = v.progress, message = v.message, result = v.result,
    error = v.error, attempts = v.attempts, started_at = v.started_at,
    finished_at = v.finished_at, run_at = v.run_at, worker = v.worker, logs = v.logs,
    owner = CASE WHEN v.status = 'running' THEN t.owner END,
    cancel_requested = t.cancel_requested AND v.status = 'running'
FROM json_to_recordset(%s::json)
     AS v(id text, status text, progress real, message text, result json, error json,
          attempts int, started_at float8, finished_at float8, run_at float8, worker int,
          logs json)
WHERE t.id = v.id AND t.owner = %s
RETURNING t.id
"""
"""Changes of tasks this instance runs (progress, finish, a retry handed back), fenced by
its id: a task whose lease another instance took over is not overwritten (its id is
missing from what the statement returns). Leaving ``running`` releases the task."""


class _Change(msgspec.Struct):
    id: str
    status: str
    progress: float
    message: str | None
    result: msgspec.Raw | None
    error: TaskError | None
    attempts: int
    started_at: float | None
    finished_at: float | None
    run_at: float | None
    worker: int | None
    logs: list[str] | None


def update_params(tasks: Sequence[Task], owner: int) -> tuple[str, int]:
    return (
        _encode(
            [
                _Change(
                    t.id,
                    t.status.value,
                    t.progress,
                    t.message,
                    t.result_json,
                    t.error,
                    t.attempts,
                    t.started_at,
                    t.finished_at,
                    t.run_at,
                    t.worker,
                    list(t.logs) if t.logs else None,
                )
                for t in tasks
            ]
        ).decode(),
        owner,
    )
