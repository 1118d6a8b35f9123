"""The store's writer: a child process that owns every write to the SQLite file.

Why a process and not a thread. The first store wrote from a thread. Under load its
commits took about 40 ms for 1,000 rows of which 8 ms were CPU: the rest was the thread
waiting to take the GIL back after each ``sqlite3_step``. A busy asyncio loop gives the GIL
up at every ``epoll_wait`` and takes it straight back, and CPython's GIL only forces a
switch when no switch at all happened during a whole switch interval, so the waiting
thread rarely gets its turn (``sys.setswitchinterval`` from 0.2 to 20 ms changed nothing,
measured). Submissions wait for commits, so the whole engine ran at the writer's pace,
and a thread that only built the rows (pure Python, no SQLite) took the engine from
43,900 to 25,200 tasks/s. A process has its own GIL: the loop's share of the work is
picking each task's fields (:func:`~.sqlite_layout.wire`) and one MessagePack encode per
batch, about 2.7 µs per task together, and the rest runs on the other core.

The protocol, over the child's stdin and stdout, each message a 4-byte big-endian length
and a MessagePack body: the parent sends :class:`Batch` (every task changed since the last
one, whole, and the ``seq`` of tasks to delete); the child writes it, commits, and answers
:class:`Ack` with the batch's ``upto`` (or an error). One batch is in flight at a time, so
a batch gathers everything that changed while the previous one was being written. When
stdin closes the child finishes, optimises and answers a last :class:`Ack` with
``upto = -1`` and its CPU time. It opens the database only when the first batch comes, so
it never touches a file the parent has not checked and set up. On Linux it is killed when
the parent dies (``PR_SET_PDEATHSIG``), as a thread would be; it shares the parent's
``flock`` so that a new instance cannot open the store before it is gone.

Run as ``python -m workerpool_tui.store.sqlite_writer DB SYNC LOCK_FD``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import operator
import signal
import sqlite3
import struct
import sys
import time
from collections.abc import Iterable
from itertools import chain
from typing import BinaryIO

import msgspec
from msgspec.structs import astuple

from ..core.models import Task
from . import sqlite_layout as layout

HEADER = struct.Struct(">I")
_changes = operator.itemgetter(*(layout.COLUMNS.index(c) for c in ("seq", "id", *layout.MUTABLE)))
"""A row's values for :func:`~.sqlite_layout.update`."""
MAX_FRAME = 1 << 31
"""Frames above this are refused: far beyond any batch (1,000 tasks are about 300 KB)."""
CHUNK_ROWS = 2_000
"""Most rows per statement (SQLite's parameter limit may allow fewer): a batch goes out in
as few statements as it can, and a batch of one statement (the usual case under load: new
tasks only, or changes only) runs in SQLite's autocommit, without ``BEGIN`` and ``COMMIT``."""


class Batch(msgspec.Struct, array_like=True):
    upto: int
    """The parent's change count this batch brings the file up to."""
    tasks: list[layout.WireRow]
    gone: list[int]


class Ack(msgspec.Struct, array_like=True):
    upto: int
    error: str | None = None
    cpu_s: float = 0.0
    """Only in the last answer: the child's CPU seconds (for benchmarks)."""
    rows: int = 0


_encode = layout.pack


def encode_batch(upto: int, tasks: Iterable[Task], gone: Iterable[int]) -> bytes:
    """A batch as the writer reads it (:class:`Batch`). Runs in the event loop, which is
    the only thread that changes tasks, so each task is read in one consistent state.
    Each task goes as its row, ``spec`` and ``state`` already in their final MessagePack
    form inside the message: the writer binds them as they are, without decoding them.
    Admission (:mod:`.admission`) lets in only what MessagePack holds exactly, so an
    encoding error here is a bug: it fails the flusher, which is fatal (never a silent
    substitute for what the client sent)."""
    return _encode((upto, [layout.wire(task) for task in tasks], sorted(gone)))


decode_ack = msgspec.msgpack.Decoder(Ack).decode
_decode_batch = msgspec.msgpack.Decoder(Batch).decode
_encode_ack = msgspec.msgpack.Encoder().encode


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def _read_frame(stream: BinaryIO) -> bytes | None:
    """The next message, or ``None`` at the end of the stream (a cut-off one included)."""
    head = _read_exactly(stream, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"a store frame of {size} bytes")
    return _read_exactly(stream, size)


class Writer:
    """Writes batches to one database file; one connection, in this process only."""

    def __init__(self, db: str, sync: str) -> None:
        self._db = db
        self._sync = sync
        self._conn: sqlite3.Connection | None = None
        self._chunk = self._update_chunk = 1
        self._stored_upto = 0
        """Every task up to this seq has a row (or had one)."""
        self.rows = 0

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._db, isolation_level=None, timeout=5.0)
        conn.execute(f"PRAGMA synchronous = {self._sync.upper()}")
        # Old SQLite builds allow only 999 parameters per statement.
        getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
        params = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999
        self._chunk = max(1, min(CHUNK_ROWS, params // len(layout.COLUMNS)))
        self._update_chunk = max(1, min(CHUNK_ROWS, params // (2 + len(layout.MUTABLE))))
        self._stored_upto = conn.execute("SELECT coalesce(max(seq), 0) FROM tasks").fetchone()[0]
        return conn

    def write(self, batch: Batch) -> None:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        stored = self._stored_upto
        # A seq above every row written so far is a new task: its whole row goes in. The
        # engine hands out seqs in order and records a task as it creates it, so any
        # other task has a row and only its mutable columns change.
        fresh = [task for task in batch.tasks if task.seq > stored]
        known = [task for task in batch.tasks if task.seq <= stored]
        if not layout.UPDATE_FROM:
            fresh, known = fresh + known, []
        if not batch.gone and (
            (not known and len(fresh) <= self._chunk)
            or (not fresh and len(known) <= self._update_chunk)
        ):
            # One statement is a transaction of its own. (Should known rows be missing,
            # _write adds a second one; nothing is acknowledged before both have run,
            # and writing a task's latest state twice is harmless.)
            self._write(conn, fresh, known, batch.gone)
        else:
            conn.execute("BEGIN")
            try:
                self._write(conn, fresh, known, batch.gone)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        self.rows += len(batch.tasks)
        self._stored_upto = max(stored, max((task.seq for task in fresh), default=0))

    def _write(
        self,
        conn: sqlite3.Connection,
        fresh: list[layout.WireRow],
        known: list[layout.WireRow],
        gone: list[int],
    ) -> None:
        """Update ``known`` rows, insert ``fresh`` ones, delete ``gone`` ones; ``fresh``
        gains any known task whose row turns out to be missing."""
        for tasks in layout.chunks(known, self._update_chunk):
            before = conn.total_changes
            conn.execute(
                layout.update(len(tasks)),
                list(chain.from_iterable([_changes(astuple(task)) for task in tasks])),
            )
            if conn.total_changes - before != len(tasks):
                fresh += tasks  # a row is missing: write these in full (idempotent)
        rows = [astuple(task) for task in fresh]
        before = conn.total_changes
        for chunk in layout.chunks(rows, self._chunk):
            conn.execute(layout.upsert(len(chunk)), list(chain.from_iterable(chunk)))
        if conn.total_changes - before != len(rows):
            raise RuntimeError("two tasks share one seq; the engine must never reuse one")
        for seqs in layout.chunks(sorted(gone), self._chunk * len(layout.COLUMNS)):
            conn.execute(layout.delete(len(seqs)), seqs)

    def truncate_wal(self) -> None:
        """After writes failed (a full disk, say) and one succeeded again: give the space
        the WAL took back to the file system, rather than keep a file that grew while
        checkpoints could not run."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None


def _die_with_parent() -> None:
    """Linux: be killed when the parent dies, like a thread of it would be."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


PIPE_BYTES = 1 << 20
"""Pipe capacity asked for (Linux allows up to ``/proc/sys/fs/pipe-max-size``, 1 MiB by
default): a batch of a few thousand tasks then goes through in one write, rather than in
16 rounds of the event loop (64 KiB each)."""


def _widen_pipes() -> None:
    set_pipe_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_pipe_size is None:
        return
    for fd in (0, 1):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_pipe_size, PIPE_BYTES)


def serve(db: str, sync: str, stdin: BinaryIO, stdout: BinaryIO) -> None:
    writer = Writer(db, sync)
    failing = False
    try:
        while (body := _read_frame(stdin)) is not None:
            batch = _decode_batch(body)
            try:
                writer.write(batch)
                ack = Ack(batch.upto, rows=len(batch.tasks))
                if failing:
                    failing = False
                    writer.truncate_wal()
            except Exception as exc:  # disk full, I/O error, a bug: the parent decides
                failing = True
                ack = Ack(batch.upto, error=f"{type(exc).__name__}: {exc}")
            stdout.write(frame(_encode_ack(ack)))
            stdout.flush()
    finally:
        writer.close()
    with contextlib.suppress(OSError):
        stdout.write(frame(_encode_ack(Ack(-1, cpu_s=time.process_time(), rows=writer.rows))))
        stdout.flush()


def main(argv: list[str] | None = None) -> int:
    db, sync, _lock_fd = (argv if argv is not None else sys.argv[1:])[:3]
    # The lock descriptor is only held (inherited with pass_fds): while this process
    # lives, nobody else can take the store.
    _die_with_parent()
    _widen_pipes()
    # Ctrl-C, a terminal hang-up or a TERM to the whole process group are for the parent
    # to handle: it shuts down gracefully and then closes our stdin.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    serve(db, sync, sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
