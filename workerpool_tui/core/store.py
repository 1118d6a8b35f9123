"""The durable task store: an SQLite journal with one writer thread and group commit.

The event loop never touches the database. :meth:`SqliteJournal.changed` only records the
task in a dict of dirty tasks keyed by id (so a burst of progress updates of one task
costs one row write) and wakes the writer thread. The writer takes everything dirty,
writes it in one transaction, commits, and starts over; while it commits, the next batch
gathers. :meth:`SqliteJournal.commit` returns once the batch holding every change recorded
before the call has committed, which is what a submission waits for before it is
acknowledged. Without anybody waiting the writer lingers a few milliseconds to gather a
bigger batch.

The file is guarded by an exclusive ``flock`` on ``<store>.lock`` (holding the owner's
PID), checked before anything is written (SQLite header, application id, schema
version, ``PRAGMA quick_check``), migrated forward from older schema versions and never
rewritten when it cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import operator
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import msgspec
from anyio.abc import TaskGroup

from .models import TASK_LOG_LINES, Task, TaskError, TaskStatus

SyncMode = Literal["normal", "full", "off"]

SCHEMA_VERSION = 2
"""Version 1 (the first layout) keyed rows by task id and had no log lines nor retry links.
Version 2 keys rows by submission order, ``seq``, so that new rows append to the table's
own b-tree instead of also landing at random places in an index of random ids (1.6x the
rows per second in a micro-benchmark), and adds both columns."""
APPLICATION_ID = 0x77707475
"""``PRAGMA application_id`` of a workerpool-tui store ("wptu"): foreign databases are refused."""
LINGER_S = 0.005
"""With nobody waiting for a commit, the writer gathers changes for this long first."""
RETRY_S = 0.5
"""Pause before the writer retries a batch whose transaction failed."""
_SQLITE_HEADER = b"SQLite format 3\x00"

_logger = logging.getLogger("workerpool_tui.store")

_COLUMNS = (
    "seq",
    "id",
    "type",
    "status",
    "priority",
    "payload",
    "progress",
    "message",
    "result",
    "error",
    "attempts",
    "max_retries",
    "timeout_s",
    "created_at",
    "started_at",
    "finished_at",
    "worker",
    "retry_of",
    "logs",
)

_SCHEMA = """
CREATE TABLE tasks (
    seq         INTEGER PRIMARY KEY,  -- submission order; unique per task, never reused
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority    INTEGER NOT NULL,
    payload     TEXT NOT NULL,   -- JSON object
    progress    REAL NOT NULL,
    message     TEXT,
    result      TEXT,            -- JSON; NULL when the task has no result
    error       TEXT,            -- JSON {"type", "message", "traceback"}
    attempts    INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    timeout_s   REAL NOT NULL,
    created_at  REAL NOT NULL,   -- epoch seconds, UTC
    started_at  REAL,
    finished_at REAL,
    worker      INTEGER,
    retry_of    TEXT,
    logs        TEXT             -- JSON list of the task's last log lines
)
"""

_V1_COLUMNS = ", ".join(c for c in _COLUMNS if c not in ("retry_of", "logs"))
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # from version N to N + 1, inside one transaction
    1: (
        _SCHEMA.replace("CREATE TABLE tasks", "CREATE TABLE tasks_v2"),
        f"INSERT INTO tasks_v2 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM tasks",
        "DROP TABLE tasks",
        "ALTER TABLE tasks_v2 RENAME TO tasks",
    ),
}

CHUNK_ROWS = 200
"""Rows per statement. Each statement is one ``sqlite3_step``, and each step gives up and
takes back the GIL; with the event loop busy, taking it back can cost a whole switch
interval (5 ms). One multi-row statement per 200 rows, rather than one per row, keeps the
writer from queueing behind the loop 1,000 times per batch."""


@functools.lru_cache(maxsize=8)
def _upsert(rows: int) -> str:
    one = f"({', '.join('?' * len(_COLUMNS))})"
    return (
        f"INSERT INTO tasks ({', '.join(_COLUMNS)}) VALUES {', '.join([one] * rows)} "
        "ON CONFLICT(seq) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "seq")
        # Two tasks with one seq would be an engine bug: refuse to overwrite (see _write_once).
        + " WHERE tasks.id = excluded.id"
    )


_MUTABLE = (
    "status",
    "progress",
    "message",
    "result",
    "error",
    "attempts",
    "started_at",
    "finished_at",
    "worker",
    "logs",
)
"""The columns a task's later changes can touch: the rest (payload above all) is written
once, when its row is inserted."""
UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)
"""``UPDATE ... FROM`` (one statement for many rows) needs SQLite 3.33; older builds
rewrite whole rows with :func:`_upsert`."""


@functools.lru_cache(maxsize=8)
def _update(rows: int) -> str:
    """Rewrite only the mutable columns of ``rows`` existing rows, matched by seq and id."""
    one = f"({', '.join('?' * (2 + len(_MUTABLE)))})"
    return (
        f"UPDATE tasks SET {', '.join(f'{c} = v.column{i}' for i, c in enumerate(_MUTABLE, 3))}"
        f" FROM (VALUES {', '.join([one] * rows)}) AS v"
        " WHERE tasks.seq = v.column1 AND tasks.id = v.column2"
    )


@functools.lru_cache(maxsize=8)
def _delete(rows: int) -> str:
    return f"DELETE FROM tasks WHERE seq IN ({', '.join('?' * rows)})"


def _chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM tasks ORDER BY seq"
_FIELD_INDEX = {name: i for i, name in enumerate(Task.__struct_fields__)}
_encode = msgspec.json.Encoder().encode
# Decoders built once: loading 100,000 tasks at start-up is mostly decoding.
_decode_any = msgspec.json.Decoder().decode
_decode_payload = msgspec.json.Decoder(dict[str, Any]).decode
_decode_error = msgspec.json.Decoder(TaskError).decode
_decode_logs = msgspec.json.Decoder(list[str]).decode
_STATUS = {s.value: s for s in TaskStatus}


def _load(conn: sqlite3.Connection) -> list[Task]:
    return [_task(row) for row in conn.execute(_SELECT)]


class StoreError(Exception):
    """The task store cannot be used (in use, corrupt, too new, unwritable); one line."""


class StoreLocked(StoreError):
    """Another process holds the store."""


def _json(value: Any) -> str:
    try:
        return _encode(value).decode()
    except (TypeError, ValueError, OverflowError):
        # A handler returned something JSON cannot hold: keep its text rather than nothing.
        return _encode(repr(value)).decode()


_pick = operator.itemgetter(*(_FIELD_INDEX[c] for c in _COLUMNS))
"""Task fields in column order, in one C call."""
_STATUS_AT, _PAYLOAD_AT, _RESULT_AT, _ERROR_AT, _LOGS_AT = (
    _COLUMNS.index(c) for c in ("status", "payload", "result", "error", "logs")
)
_pick_mutable = operator.itemgetter(*(_FIELD_INDEX[c] for c in ("seq", "id", *_MUTABLE)))
"""seq, id and the mutable fields, in :func:`_update`'s parameter order."""
_M_STATUS_AT, _M_RESULT_AT, _M_ERROR_AT, _M_LOGS_AT = (
    2 + _MUTABLE.index(c) for c in ("status", "result", "error", "logs")
)
_STATUS_TEXT = {s: s.value for s in TaskStatus}
"""A dict lookup: reading ``.value`` of an enum member costs a descriptor call per row."""


def _encode_mutable(
    row: list[Any], status_at: int, result_at: int, error_at: int, logs_at: int
) -> list[Any]:
    """Turn the fields that change after insert into column values, in place."""
    row[status_at] = _STATUS_TEXT[row[status_at]]
    if row[result_at] is not None:
        row[result_at] = _json(row[result_at])
    if row[error_at] is not None:
        row[error_at] = _json(row[error_at])
    logs = row[logs_at]
    row[logs_at] = _json(list(logs)) if logs else None
    return row


def _row(task: Task) -> list[Any]:
    """The task as a table row, from one consistent read of its fields.

    Runs in the writer thread while the loop may be changing the task: ``astuple`` reads
    every field in one C call under the GIL, so the row never mixes two states. (A state
    written in between is dirty again and goes out with the next batch.)
    """
    row = list(_pick(msgspec.structs.astuple(task)))
    row[_PAYLOAD_AT] = _json(row[_PAYLOAD_AT])
    return _encode_mutable(row, _STATUS_AT, _RESULT_AT, _ERROR_AT, _LOGS_AT)


def _changes(task: Task) -> list[Any]:
    """seq, id and the mutable columns of a task whose row exists (see :func:`_update`);
    one consistent read of its fields, like :func:`_row`."""
    row = list(_pick_mutable(msgspec.structs.astuple(task)))
    return _encode_mutable(row, _M_STATUS_AT, _M_RESULT_AT, _M_ERROR_AT, _M_LOGS_AT)


def _task(row: Sequence[Any]) -> Task:
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
    ) = row
    lines = _decode_logs(logs) if logs else None
    return Task(
        id=id_,
        type=type_,
        payload=_decode_payload(payload),
        status=_STATUS[status],
        priority=priority,
        progress=progress,
        message=message,
        result=None if result is None else _decode_any(result),
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
        logs=deque(lines, maxlen=TASK_LOG_LINES) if lines else None,
    )


class _Lock:
    """An exclusive ``flock`` on ``<store>.lock`` with the holder's PID written in it.

    The kernel drops the lock when the process dies, so a ``kill -9`` never leaves a
    stale lock behind.
    """

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".lock")
        self._fd: int | None = None

    def acquire(self, db: Path) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"store {db}: cannot open {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise StoreLocked(f"store {db} is in use by {who}") from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"store {db}: cannot lock {self.path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _check_header(db: Path) -> None:
    try:
        with db.open("rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"store {db} cannot be read: {exc.strerror}") from None
    if head and head != _SQLITE_HEADER:
        raise StoreError(
            f"store {db} is not an SQLite database (corrupt or a different file);"
            " it was left untouched: move it away or set store.path"
        )


def _inspect(conn: sqlite3.Connection, db: Path) -> tuple[bool, int]:
    """Whether the file is new, and its schema version; refuses foreign and newer files."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    fresh = app_id == 0 and version == 0 and not tables
    if not fresh and app_id != APPLICATION_ID:
        raise StoreError(
            f"store {db} is an SQLite database of another program (application_id {app_id});"
            " it was left untouched: set store.path to another file"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {db} has schema version {version}, newer than this workerpool-tui"
            f" understands ({SCHEMA_VERSION}): upgrade workerpool-tui or use another store.path"
        )
    return fresh, int(version)


def _verdict(db: Path, check: list[Any]) -> None:
    if check != ["ok"]:
        raise StoreError(
            f"store {db} is corrupt (quick_check: {'; '.join(map(str, check))});"
            " it was left untouched: move it away or restore a copy"
        )


class _QuickCheck:
    """``PRAGMA quick_check`` on a connection of its own, in a thread of its own.

    SQLite checks without holding the GIL, so at start-up the check runs on the second
    core while the loading thread decodes rows (a quarter of a second for 100,000 tasks).
    Used as a context manager: leaving it always waits for the thread.
    """

    def __init__(self, db: Path) -> None:
        self._db = db
        self._thread = threading.Thread(target=self._run, name="workerpool-store check")
        self.result: list[Any] = []
        self.error: sqlite3.Error | None = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._db, timeout=5.0)
            try:
                self.result = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            self.error = exc

    def __enter__(self) -> _QuickCheck:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join()

    def raise_if_corrupt(self) -> None:
        if self.error is not None:
            raise self.error
        _verdict(self._db, self.result)


def _setup(conn: sqlite3.Connection, db: Path, sync: SyncMode, fresh: bool, version: int) -> None:
    """Switch to WAL, then create or migrate the schema; only once the checks have passed."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"store {db}: cannot switch to WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {sync.upper()}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if fresh:
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        else:
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            if version < SCHEMA_VERSION:
                _logger.info("store %s migrated from schema %d to %d", db, version, SCHEMA_VERSION)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SqliteJournal:
    """The durable :class:`~workerpool_tui.core.journal.Journal`: tasks live in one file."""

    durable = True

    def __init__(self, path: Path | str, *, sync: SyncMode = "normal") -> None:
        self.path = Path(path)
        self.sync: SyncMode = sync
        self._lock = _Lock(self.path)
        self._conn: sqlite3.Connection | None = None
        self._chunk = 1
        self._update_chunk = 1
        self._stored_upto = 0
        """Writer thread only: every task up to this seq has a row (or had one)."""
        self._thread: threading.Thread | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._mutex = threading.Lock()
        """Taken directly on the hot path (``changed``): cheaper than the Condition's."""
        self._cond = threading.Condition(self._mutex)
        # Shared with the writer thread; guarded by ``_mutex``.
        self._dirty: dict[str, Task] = {}
        self._gone: set[int] = set()
        """The ``seq`` of tasks to delete."""
        self._recorded = 0
        """How many changes were recorded (``changed``/``forget`` calls)."""
        self._committed = 0
        """Every change up to this count is committed."""
        self._want = 0
        """The highest count somebody awaits in :meth:`commit`."""
        self._waiting = 0
        self._idle = False
        """The writer waits for any change (``changed`` wakes it)."""
        self._lingering = False
        """The writer gathers a batch until a deadline (only a ``commit`` wakes it)."""
        self._closing = False
        self._error: BaseException | None = None
        # Loop thread only.
        self._waiters: deque[tuple[int, anyio.Event]] = deque()
        self.commits = 0
        """Transactions committed (for benchmarks and tests)."""
        self.rows_written = 0
        self.writer_cpu_s = 0.0
        """CPU seconds the writer thread used, known once it has ended (for benchmarks)."""

    # ------------------------------------------------------------------ the loop side
    async def open(self, tg: TaskGroup) -> list[Task]:
        """Lock, check and load the store, then start the writer thread.

        Raises :class:`StoreError` (one line) when the store cannot be used. ``tg`` is not
        needed: the writer is a thread that must outlive the engine's task group, which is
        cancelled before the final commit at shutdown.
        """
        self._token = anyio.lowlevel.current_token()
        tasks = await anyio.to_thread.run_sync(self._open_sync)
        self._thread = threading.Thread(
            target=self._writer, name=f"workerpool-store {self.path.name}", daemon=True
        )
        self._thread.start()
        return tasks

    def changed(self, task: Task) -> None:
        with self._mutex:
            self._dirty[task.id] = task
            self._recorded += 1
            if self._idle:
                self._idle = False
                self._cond.notify()

    def forget(self, tasks: Iterable[Task]) -> None:
        with self._mutex:
            for task in tasks:
                self._dirty.pop(task.id, None)
                self._gone.add(task.seq)
                self._recorded += 1
            if self._idle and self._gone:
                self._idle = False
                self._cond.notify()

    async def commit(self) -> None:
        target = self._recorded  # only the loop thread changes it
        if self._committed >= target:
            return
        event = anyio.Event()
        with self._cond:
            if self._committed >= target:
                return
            if self._thread is None or not self._thread.is_alive():
                raise StoreError(f"store {self.path} is not open")
            self._waiting += 1
            self._want = max(self._want, target)
            if self._idle or self._lingering:
                self._idle = self._lingering = False
                self._cond.notify()
        self._waiters.append((target, event))
        await event.wait()
        if self._committed < target:
            raise StoreError(f"store {self.path}: cannot write: {self._error}")

    def _release_waiters(self) -> None:
        """In the loop: wake the commits that are done, or all of them after an error."""
        committed, failed = self._committed, self._error is not None
        waiters = self._waiters
        released = 0
        while waiters and (failed or waiters[0][0] <= committed):
            waiters.popleft()[1].set()
            released += 1
        with self._cond:
            self._waiting -= released

    async def close(self) -> None:
        """Write what is left, close the database and release the lock."""
        thread = self._thread
        if thread is not None:
            with self._cond:
                self._closing = True
                self._cond.notify()
            await anyio.to_thread.run_sync(thread.join)
            self._thread = None
        if self._conn is not None:  # open failed half-way, or the writer never ran
            self._conn.close()
            self._conn = None
        self._lock.release()

    # ------------------------------------------------------------------ opening
    def _open_sync(self) -> list[Task]:
        db = self.path
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store {db}: cannot create {db.parent}: {exc.strerror}") from None
        self._lock.acquire(db)
        try:
            _check_header(db)
            try:
                conn = sqlite3.connect(
                    db, isolation_level=None, check_same_thread=False, timeout=5.0
                )
            except sqlite3.Error as exc:
                raise StoreError(f"store {db} cannot be opened: {exc}") from None
            try:
                fresh, version = _inspect(conn, db)
                mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                if not fresh and version == SCHEMA_VERSION and mode == "wal":
                    # Nothing to write before loading: check and load at once. Rows of a
                    # damaged file may fail to load; the check's verdict speaks first.
                    failed: Exception | None = None
                    with _QuickCheck(db) as check:
                        try:
                            tasks = _load(conn)
                        except Exception as exc:
                            failed = exc
                    check.raise_if_corrupt()
                    if failed is not None:
                        raise failed
                    _setup(conn, db, self.sync, fresh, version)
                else:
                    if not fresh:
                        _verdict(db, [r[0] for r in conn.execute("PRAGMA quick_check(5)")])
                    _setup(conn, db, self.sync, fresh, version)
                    tasks = _load(conn)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise StoreError(
                    f"store {db} is corrupt or unreadable ({exc}); it was left untouched"
                ) from None
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError) as exc:
                conn.close()
                raise StoreError(
                    f"store {db} holds a task it cannot read ({exc}); it was left untouched"
                ) from None
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._lock.release()
            raise
        self._conn = conn
        # Old SQLite builds allow only 999 parameters per statement.
        getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
        params = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999
        self._chunk = max(1, min(CHUNK_ROWS, params // len(_COLUMNS)))
        self._update_chunk = max(1, min(CHUNK_ROWS, params // (2 + len(_MUTABLE))))
        self._stored_upto = max((task.seq for task in tasks), default=0)
        if tasks:
            _logger.info("store %s: %d task(s) loaded", db, len(tasks))
        return tasks

    # ------------------------------------------------------------------ the writer thread
    def _writer(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while self._write_once(conn):
                pass
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()
            self._conn = None
            self.writer_cpu_s = time.thread_time()

    def _take(self) -> tuple[dict[str, Task], set[int], int] | None:
        """Wait for work and take it; ``None`` once closing with nothing left."""
        cond = self._cond
        with cond:
            linger_until: float | None = None
            while True:
                has_work = bool(self._dirty or self._gone)
                if self._closing and not has_work:
                    return None
                if has_work and (self._closing or self._want > self._committed):
                    break
                if has_work:
                    now = time.monotonic()
                    if linger_until is None:
                        linger_until = now + LINGER_S
                    if now >= linger_until:
                        break
                    self._lingering = True
                    cond.wait(linger_until - now)
                else:
                    self._idle = True
                    cond.wait()
                self._idle = self._lingering = False
            batch, self._dirty = self._dirty, {}
            gone, self._gone = self._gone, set()
            return batch, gone, self._recorded

    def _write_once(self, conn: sqlite3.Connection) -> bool:
        taken = self._take()
        if taken is None:
            return False
        batch, gone, upto = taken
        stored = self._stored_upto
        try:
            # A seq above every row written so far is a new task: its whole row goes in.
            # The engine hands out seqs in order and records a task as it creates it, so
            # any other task has a row and only its mutable columns change.
            fresh = [task for task in batch.values() if task.seq > stored]
            known = [task for task in batch.values() if task.seq <= stored]
            if not UPDATE_FROM:
                fresh, known = fresh + known, []
            conn.execute("BEGIN")
            try:
                for tasks in _chunks(known, self._update_chunk):
                    before = conn.total_changes
                    conn.execute(
                        _update(len(tasks)),
                        list(chain.from_iterable([_changes(task) for task in tasks])),
                    )
                    if conn.total_changes - before != len(tasks):
                        fresh += tasks  # a row is missing: write these in full (idempotent)
                rows = [_row(task) for task in fresh]
                before = conn.total_changes
                for chunk in _chunks(rows, self._chunk):
                    conn.execute(_upsert(len(chunk)), list(chain.from_iterable(chunk)))
                if conn.total_changes - before != len(rows):
                    raise StoreError("two tasks share one seq; the engine must never reuse one")
                for seqs in _chunks(sorted(gone), self._chunk * len(_COLUMNS)):
                    conn.execute(_delete(len(seqs)), seqs)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            _logger.error("store %s: write failed, will retry: %s", self.path, exc)
            with self._cond:
                self._error = exc
                for task_id, task in batch.items():
                    if task.seq not in self._gone:
                        self._dirty.setdefault(task_id, task)
                self._gone |= gone
                closing, waiting = self._closing, self._waiting
            if waiting:
                self._notify_loop()
            if closing:
                _logger.error("store %s: closing with unwritten changes", self.path)
                return False
            time.sleep(RETRY_S)
            return True
        self.commits += 1
        self.rows_written += len(batch)
        self._stored_upto = max(stored, max((task.seq for task in fresh), default=0))
        with self._cond:
            self._committed = upto
            self._error = None
            waiting = self._waiting
        if waiting:
            self._notify_loop()
        return True

    def _notify_loop(self) -> None:
        token = self._token
        if token is None:
            return
        # RuntimeError: the event loop is gone, so nobody is left to wake.
        with contextlib.suppress(RuntimeError):
            loop = token.native_token
            if isinstance(loop, asyncio.AbstractEventLoop):
                # Do not wait for the loop's turn: the next batch can start meanwhile.
                loop.call_soon_threadsafe(self._release_waiters)
            else:
                anyio.from_thread.run_sync(self._release_waiters, token=token)
