"""How the task store lays tasks out in SQLite: the schema, rows, and migrations.

Schema 4, one row per task::

    seq    INTEGER PRIMARY KEY  submission order (new rows append to the b-tree)
    id     TEXT                 the task id
    type   TEXT                 the task type
    status TEXT                 pending, running, completed, failed or cancelled
    spec   BLOB                 what never changes, MessagePack: [payload, priority,
                                max_retries, timeout_s, created_at, retry_of]
    state  BLOB                 what changes, MessagePack: [progress, message, result,
                                error, attempts, started_at, finished_at, worker, logs],
                                the result as its JSON text (binary)
    extra  BLOB                 NULL, or what few tasks have, MessagePack: [run_at,
                                depends_on, unique_key, unique_until] (issue 12)

``id``, ``type`` and ``status`` stay plain columns, so ``sqlite3 tasks.db`` can still
answer "how many failed?". The rest is two MessagePack arrays: the event loop encodes
them with the batch (:func:`wire`, then one ``msgspec`` call for all), the writer process binds
them without decoding them, six values a row instead of the 19 columns of schema 2, and
loading 100,000 tasks at start-up is two C decodes per row instead of five (0.6 s instead
of 1.3 s). ``spec`` is written once, when the row
is inserted: a later change rewrites only ``status`` and ``state``, so a large payload is
never written again for a progress update.
"""

from __future__ import annotations

import functools
import logging
import operator
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec

from ..core.models import TASK_LOG_LINES, Task, TaskError, TaskStatus

SCHEMA_VERSION = 4
"""1: the first layout, keyed by task id, without log lines or retry links.
2: keyed by ``seq`` (appends instead of inserts at random places of an id index: 1.6x the
rows per second), with ``logs`` and ``retry_of``; one column per field, JSON values.
3: two MessagePack arrays (``spec``, ``state``).
4: the layout above: ``extra`` added (NULL for every older row)."""

_logger = logging.getLogger("workerpool_tui.store")

_V3_SCHEMA = """
CREATE TABLE tasks (
    seq     INTEGER PRIMARY KEY,  -- submission order; unique per task, never reused
    id      TEXT NOT NULL,
    type    TEXT NOT NULL,
    status  TEXT NOT NULL
            CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    spec    BLOB NOT NULL,  -- MessagePack [payload, priority, max_retries, timeout_s,
                            --   created_at, retry_of]
    state   BLOB NOT NULL   -- MessagePack [progress, message, result, error, attempts,
                            --   started_at, finished_at, worker, logs]
)
"""
SCHEMA = _V3_SCHEMA.replace("state   BLOB NOT NULL   --", "state   BLOB NOT NULL,  --").replace(
    "\n)\n",
    "\n    extra   BLOB            -- NULL, or MessagePack [run_at, depends_on, unique_key,"
    "\n                            --   unique_until]\n)\n",
)

COLUMNS = ("seq", "id", "type", "status", "spec", "state", "extra")
MUTABLE = ("status", "state", "extra")
"""The columns a task's later changes rewrite."""
SPEC_FIELDS = ("payload", "priority", "max_retries", "timeout_s", "created_at", "retry_of")
STATE_FIELDS = (
    "progress",
    "message",
    "result_json",
    "error",
    "attempts",
    "started_at",
    "finished_at",
    "worker",
    "logs",
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM tasks ORDER BY seq"


@functools.lru_cache(maxsize=16)
def upsert(rows: int) -> str:
    one = f"({', '.join('?' * len(COLUMNS))})"
    return (
        f"INSERT INTO tasks ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)} "
        "ON CONFLICT(seq) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "seq")
        # Two tasks with one seq would be an engine bug: refuse to overwrite.
        + " WHERE tasks.id = excluded.id"
    )


UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)
"""``UPDATE ... FROM`` (one statement for many rows) needs SQLite 3.33; older builds
rewrite whole rows with :func:`upsert`."""


@functools.lru_cache(maxsize=16)
def update(rows: int) -> str:
    """Rewrite only the mutable columns of ``rows`` existing rows, matched by seq and id."""
    one = f"({', '.join('?' * (2 + len(MUTABLE)))})"
    return (
        f"UPDATE tasks SET {', '.join(f'{c} = v.column{i}' for i, c in enumerate(MUTABLE, 3))}"
        f" FROM (VALUES {', '.join([one] * rows)}) AS v"
        " WHERE tasks.seq = v.column1 AND tasks.id = v.column2"
    )


@functools.lru_cache(maxsize=16)
def delete(rows: int) -> str:
    return f"DELETE FROM tasks WHERE seq IN ({', '.join('?' * rows)})"


def chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# ---------------------------------------------------------------------- encoding
def _enc_hook(value: Any) -> Any:
    if isinstance(value, deque):  # a task's log lines
        return list(value)
    raise NotImplementedError


pack = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
"""MessagePack, with a task's log lines (a deque) as an array."""
_FIELD_INDEX = {name: i for i, name in enumerate(Task.__struct_fields__)}
_pick_spec = operator.itemgetter(*(_FIELD_INDEX[c] for c in SPEC_FIELDS))
_pick_state = operator.itemgetter(*(_FIELD_INDEX[c] for c in STATE_FIELDS))
EXTRA_FIELDS = ("run_at", "depends_on", "unique_key", "unique_until")
_pick_extra = operator.itemgetter(*(_FIELD_INDEX[c] for c in EXTRA_FIELDS))
_SEQ_AT, _ID_AT, _TYPE_AT, _STATUS_AT = (_FIELD_INDEX[c] for c in ("seq", "id", "type", "status"))
_RESULT_AT = STATE_FIELDS.index("result_json")
SPEC_PAYLOAD_AT = SPEC_FIELDS.index("payload")


class WireRow(msgspec.Struct, array_like=True, gc=False):
    """A row on its way to the writer process, as :func:`wire` encodes it. ``spec`` and
    ``state`` stay raw MessagePack: they are bound as the column values they are."""

    seq: int
    id: str
    type: str
    status: str
    spec: msgspec.Raw
    state: msgspec.Raw
    extra: bytes | None


def wire(task: Task) -> tuple[Any, ...]:
    """The task as a :class:`WireRow` to encode, ``spec`` and ``state`` as tuples, from
    one consistent read of its fields (``astuple`` is one C call)."""
    f = msgspec.structs.astuple(task)
    state: tuple[Any, ...] = _pick_state(f)
    raw = state[_RESULT_AT]
    if raw is not None:
        # The result's JSON as plain bytes: MessagePack writes a Raw verbatim, as if it
        # were MessagePack.
        state = (*state[:_RESULT_AT], bytes(raw), *state[_RESULT_AT + 1 :])
    run_at, depends_on, key, until = _pick_extra(f)
    extra = None
    if run_at is not None or depends_on or key is not None:
        extra = pack((run_at, depends_on, key, until))
    return (f[_SEQ_AT], f[_ID_AT], f[_TYPE_AT], f[_STATUS_AT], _pick_spec(f), state, extra)


_decode_spec = msgspec.msgpack.Decoder(
    tuple[dict[str, Any], int, int, float, float, str | None]
).decode
_decode_state = msgspec.msgpack.Decoder(
    tuple[
        float,
        str | None,
        bytes | None,
        TaskError | None,
        int,
        float | None,
        float | None,
        int | None,
        list[str] | None,
    ]
).decode
_decode_extra = msgspec.msgpack.Decoder(
    tuple[float | None, tuple[str, ...] | None, str | None, float | None]
).decode
_STATUS = {s.value: s for s in TaskStatus}


def task(values: Sequence[Any]) -> Task:
    """A :class:`Task` from a row of :data:`SELECT`."""
    seq, id_, type_, status, spec, state, extra = values
    payload, priority, max_retries, timeout_s, created_at, retry_of = _decode_spec(spec)
    (progress, message, result, error, attempts, started_at, finished_at, worker, logs) = (
        _decode_state(state)
    )
    task = Task(
        id=id_,
        type=type_,
        payload=payload,
        status=_STATUS[status],
        priority=priority,
        progress=progress,
        message=message,
        result_json=None if result is None else msgspec.Raw(result),
        error=error,
        attempts=attempts,
        max_retries=max_retries,
        timeout_s=timeout_s,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        worker=worker,
        retry_of=retry_of,
        seq=seq,
        logs=deque(logs, maxlen=TASK_LOG_LINES) if logs else None,
    )
    if extra is not None:
        task.run_at, task.depends_on, task.unique_key, task.unique_until = _decode_extra(extra)
    return task


def load(conn: sqlite3.Connection) -> list[Task]:
    return [task(values) for values in conn.execute(SELECT)]


# ---------------------------------------------------------------------- migrations
_V2_COLUMNS = (
    "seq, id, type, status, priority, payload, progress, message, result, error, attempts,"
    " max_retries, timeout_s, created_at, started_at, finished_at, worker, retry_of, logs"
)
_V2_TABLE = """
CREATE TABLE tasks_v2 (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
    priority INTEGER NOT NULL, payload TEXT NOT NULL, progress REAL NOT NULL, message TEXT,
    result TEXT, error TEXT, attempts INTEGER NOT NULL, max_retries INTEGER NOT NULL,
    timeout_s REAL NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    worker INTEGER, retry_of TEXT, logs TEXT
)
"""
_V1_COLUMNS = _V2_COLUMNS.replace(", retry_of, logs", "")
_json_payload = msgspec.json.Decoder(dict[str, Any]).decode
_json_error = msgspec.json.Decoder(TaskError).decode
_json_logs = msgspec.json.Decoder(list[str]).decode


def _from_v1(conn: sqlite3.Connection) -> None:
    """Re-key the table by seq, and add ``retry_of`` and ``logs``."""
    conn.execute(_V2_TABLE)
    conn.execute(f"INSERT INTO tasks_v2 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM tasks")
    conn.execute("DROP TABLE tasks")
    conn.execute("ALTER TABLE tasks_v2 RENAME TO tasks")


def _v2_row(values: Sequence[Any]) -> list[Any]:
    """A schema-2 row (one JSON column per field) as a row of :data:`COLUMNS`."""
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
        worker,
        retry_of,
        logs,
    ) = values
    spec = (_json_payload(payload), priority, max_retries, timeout_s, created_at, retry_of)
    state = (
        progress,
        message,
        None if result is None else result.encode(),  # the result's JSON, as bytes
        None if error is None else _json_error(error),
        attempts,
        started_at,
        finished_at,
        worker,
        _json_logs(logs) if logs else None,
    )
    return [seq, id_, type_, status, pack(spec), pack(state)]


def _from_v2(conn: sqlite3.Connection) -> None:
    """One column per field (JSON) to the two MessagePack arrays."""
    conn.execute(_V3_SCHEMA.replace("CREATE TABLE tasks", "CREATE TABLE tasks_v3"))
    old = conn.execute(f"SELECT {_V2_COLUMNS} FROM tasks ORDER BY seq")
    insert = "INSERT INTO tasks_v3 (seq, id, type, status, spec, state) VALUES (?, ?, ?, ?, ?, ?)"
    conn.executemany(insert, (_v2_row(values) for values in old))
    conn.execute("DROP TABLE tasks")
    conn.execute("ALTER TABLE tasks_v3 RENAME TO tasks")


def _from_v3(conn: sqlite3.Connection) -> None:
    """Add ``extra`` (NULL: no run_at, dependencies or unique key)."""
    conn.execute("ALTER TABLE tasks ADD COLUMN extra BLOB")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _from_v1,
    2: _from_v2,
    3: _from_v3,
}
"""From version N to N + 1; all steps run inside one transaction."""


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a file of schema ``version`` to :data:`SCHEMA_VERSION` (in the caller's
    transaction)."""
    for step in range(version, SCHEMA_VERSION):
        MIGRATIONS[step](conn)
