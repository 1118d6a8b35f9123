"""Tasks to rows and back, for the cluster's ``tasks`` table.

Writes go in batches as one statement each, with every column an array
(``unnest(%s::text[], ...)``): a thousand tasks are one statement and one round trip, and
the statement text is the same for every batch size (so PostgreSQL prepares it once).
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
    " run_at, worker, instance, retry_of, logs::text"
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
    )


INSERT = """
INSERT INTO {s}.tasks (id, type, status, priority, payload, max_retries, timeout_s,
                       created_at, run_at, retry_of)
SELECT id, type, 'pending', priority, payload::json, max_retries, timeout_s, created_at,
       run_at, retry_of
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::int[], %s::float8[],
            %s::float8[], %s::float8[], %s::text[])
     AS v(id, type, priority, payload, max_retries, timeout_s, created_at, run_at, retry_of)
RETURNING id, seq
"""


def insert_params(tasks: Sequence[Task]) -> tuple[list[Any], ...]:
    """The arrays of :data:`INSERT` for new tasks."""
    return (
        [t.id for t in tasks],
        [t.type for t in tasks],
        [t.priority for t in tasks],
        [_encode(t.payload).decode() for t in tasks],
        [t.max_retries for t in tasks],
        [t.timeout_s for t in tasks],
        [t.created_at for t in tasks],
        [t.run_at for t in tasks],
        [t.retry_of for t in tasks],
    )


UPDATE = """
UPDATE {s}.tasks AS t SET
    status = v.status, progress = v.progress, message = v.message, result = v.result::json,
    error = v.error::json, attempts = v.attempts, started_at = v.started_at,
    finished_at = v.finished_at, run_at = v.run_at, worker = v.worker, logs = v.logs::json,
    owner = CASE WHEN v.status = 'running' THEN t.owner END,
    cancel_requested = t.cancel_requested AND v.status = 'running'
FROM unnest(%s::text[], %s::text[], %s::real[], %s::text[], %s::text[], %s::text[],
            %s::int[], %s::float8[], %s::float8[], %s::float8[], %s::int[], %s::text[])
     AS v(id, status, progress, message, result, error, attempts, started_at, finished_at,
          run_at, worker, logs)
WHERE t.id = v.id AND t.owner = %s
RETURNING t.id
"""
"""Changes of tasks this instance runs (progress, finish, a retry handed back), fenced by
its id: a task whose lease another instance took over is not overwritten (its id is
missing from what the statement returns). Leaving ``running`` releases the task."""


def update_params(tasks: Sequence[Task], owner: int) -> tuple[Any, ...]:
    return (
        [t.id for t in tasks],
        [t.status.value for t in tasks],
        [t.progress for t in tasks],
        [t.message for t in tasks],
        [None if t.result_json is None else bytes(t.result_json).decode() for t in tasks],
        [None if t.error is None else _encode(t.error).decode() for t in tasks],
        [t.attempts for t in tasks],
        [t.started_at for t in tasks],
        [t.finished_at for t in tasks],
        [t.run_at for t in tasks],
        [t.worker for t in tasks],
        [None if not t.logs else _encode(list(t.logs)).decode() for t in tasks],
        owner,
    )
