"""The durable task store: an SQLite journal, written by a process of its own.

The event loop never waits for the database. :meth:`SqliteJournal.changed` records the
task in a dict of dirty tasks keyed by id; a flusher task sends what is dirty, one batch
at a time, to the writer process (:mod:`.sqlite_writer`, which explains why it is a
process), which writes it in one transaction and answers once it has committed.
:meth:`SqliteJournal.commit` returns once the batch holding every change recorded before
the call has committed, which is what a submission waits for before it is acknowledged.

The file is guarded by an exclusive ``flock`` on ``<store>.lock`` (holding the owner's
PID, and shared with the writer process), checked before anything is written (SQLite
header, application id, schema version, ``PRAGMA quick_check``), migrated forward from
older schema versions (:mod:`.sqlite_layout`) and never rewritten when it cannot be read.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..core.errors import StoreError, StoreLocked, StoreUnavailable
from ..core.models import Task
from ..core.supervise import Fatal, one_line, supervised
from ..core.tally import CommitTally
from .schedule_file import FileSchedules, FileTypeSettings
from .sqlite_layout import SCHEMA_VERSION
from .sqlite_open import APPLICATION_ID, Lock, SyncMode, open_sync
from .sqlite_writer import HEADER, Ack, decode_ack, encode_batch, frame

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "SqliteJournal",
    "StoreError",
    "StoreLocked",
    "SyncMode",
]

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport there
    from exceptiongroup import BaseExceptionGroup

LINGER_S = 0.005
"""With nobody waiting for a commit, the writer gathers changes for this long first."""
RETRY_S = 0.5
"""Pause before the writer retries a batch whose transaction failed."""
_logger = logging.getLogger("workerpool_tui.store")


IN_FLIGHT = 2
"""Batches sent and not yet answered, at most. With two, the writer starts on the next
batch as soon as it has committed one, while the loop reads that answer and gathers the
batch after; with one, each waited for the other."""


@dataclass(frozen=True, slots=True)
class _Sent:
    """A batch on its way to the writer, kept until its answer."""

    upto: int
    tasks: dict[str, Task]
    gone: set[int]
    sent_at: float
    """``time.monotonic()`` when it was handed to the writer (commit latency)."""


class SqliteJournal:
    """The durable :class:`~workerpool_tui.core.journal.Journal`: tasks live in one file.

    The loop side records changed tasks in a dict keyed by id (a burst of progress updates
    of one task is one row write) and a flusher task sends them to the writer process
    (:mod:`.sqlite_writer`) one batch at a time: everything that changed while the previous
    batch was being written. With nobody waiting for a commit the flusher lingers a few
    milliseconds first, to gather a bigger batch. :meth:`commit` returns once every change
    recorded before the call is committed, which is what a submission waits for before
    it is acknowledged.
    """

    durable = True

    def __init__(self, path: Path | str, *, sync: SyncMode = "normal") -> None:
        self.path = Path(path)
        self.schedules = FileSchedules(self.path)
        """The API's schedules, kept beside the database."""
        self.type_settings = FileTypeSettings(self.path)
        """``PATCH /api/v1/types`` changes, kept beside the database."""
        self.sync: SyncMode = sync
        self._lock = Lock(self.path)
        self._proc: Process | None = None
        self._replies: BufferedByteReceiveStream | None = None
        self._dirty: dict[str, Task] = {}
        self._gone: set[int] = set()
        """The ``seq`` of tasks to delete."""
        self._recorded = 0
        """How many changes were recorded (``changed``/``forget`` calls)."""
        self._committed = 0
        """Every change up to this count is committed."""
        self._want = 0
        """The highest count somebody awaits in :meth:`commit`."""
        self._waiters: deque[tuple[int, anyio.Event]] = deque()
        self._asleep = False
        self._wake = anyio.Event()
        """Set when the sleeping flusher has work."""
        self._hurry = anyio.Event()
        """Set when somebody awaits a commit: the flusher stops lingering."""
        self._flusher_done = anyio.Event()
        self._sent_upto = 0
        """The ``upto`` of the last batch sent."""
        self._void_upto = 0
        """After a failed write: answers up to this ``upto`` commit nothing."""
        self._retry_at = 0.0
        self._closing = False
        self._error: str | None = None
        """Why the last batch failed (cleared by the next success)."""
        self._broken: str | None = None
        """Why the writer process cannot be used any more."""
        self._on_fatal: Fatal | None = None
        self.commits = 0
        """Batches committed (for benchmarks and tests)."""
        self.commit_tally = CommitTally()
        """Each commit's latency (sent to answered) and rows, for ``GET /metrics``."""
        self.rows_written = 0
        self.writer_cpu_s = 0.0
        """CPU seconds the writer process used, known once it has ended (for benchmarks)."""

    # ------------------------------------------------------------------ the loop side
    async def open(self, tg: TaskGroup, on_fatal: Fatal) -> list[Task]:
        """Lock, check and load the store, start the writer process and, in ``tg``, the
        flusher. ``tg`` must outlive every use of the journal: :meth:`close` (which
        writes what is left) ends the flusher.

        Raises :class:`StoreError` (one line) when the store cannot be used.
        """
        self._on_fatal = on_fatal
        tasks = await anyio.to_thread.run_sync(open_sync, self.path, self.sync, self._lock)
        try:
            self._proc = await anyio.open_process(
                [
                    sys.executable,
                    "-m",
                    "workerpool_tui.store.sqlite_writer",
                    str(self.path),
                    self.sync,
                    str(self._lock.fd),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
                pass_fds=(self._lock.fd,),
                # Its own process group: a Ctrl-C in the terminal, or a TERM to the
                # group, is the parent's to handle; the writer stops when told.
                start_new_session=True,
            )
        except OSError as exc:
            self._lock.release()
            raise StoreError(f"store {self.path}: cannot start its writer: {exc}") from None
        assert self._proc.stdout is not None
        self._replies = BufferedByteReceiveStream(self._proc.stdout)
        # Not restartable (its batches in flight are its state): a failure breaks the
        # store, which fails every waiting commit, and is fatal to the process.
        tg.start_soon(
            partial(supervised, restart=False, logger=_logger),
            f"store {self.path}: flusher",
            self._flusher,
            on_fatal,
        )
        return tasks

    def changed(self, task: Task) -> None:
        self._dirty[task.id] = task
        self._recorded += 1
        if self._asleep:
            self._asleep = False
            self._wake.set()

    def forget(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self._dirty.pop(task.id, None)
            self._gone.add(task.seq)
            self._recorded += 1
        if self._asleep and self._gone:
            self._asleep = False
            self._wake.set()

    async def commit(self, *, fail_fast: bool = False, new_only: bool = False) -> None:
        # One writer, one queue of changes: ``new_only`` waits for all of them.
        target = self._recorded
        if self._committed >= target:
            return
        if self._broken is not None or self._proc is None or self._closing:
            raise StoreUnavailable(
                f"store {self.path}: cannot write: {self._broken or 'not open'}",
                retry_after_s=RETRY_S * 2,
            )
        if fail_fast and self._error is not None and self._retry_at:
            # The last write failed and its retry is not due yet: a new submission would
            # only wait for it to fail too (a full disk takes one 503 a request, at once).
            raise StoreUnavailable(
                f"store {self.path}: cannot write: {self._error}", retry_after_s=RETRY_S * 2
            )
        event = anyio.Event()
        self._waiters.append((target, event))
        if target > self._want:
            self._want = target
            self._hurry.set()
        await event.wait()
        if self._committed < target:
            raise StoreUnavailable(
                f"store {self.path}: cannot write: {self._broken or self._error}",
                retry_after_s=RETRY_S * 2,
            )

    def _release_waiters(self, *, failed: bool = False) -> None:
        """Wake the commits that are done, or all of them after a failure (those whose
        changes are not committed then raise)."""
        committed, waiters = self._committed, self._waiters
        while waiters and (failed or waiters[0][0] <= committed):
            waiters.popleft()[1].set()

    async def close(self) -> None:
        """Write what is left, stop the writer process and release the lock."""
        proc = self._proc
        if proc is not None:
            self._closing = True
            self._wake.set()
            self._hurry.set()
            with anyio.CancelScope(shield=True):
                await self._flusher_done.wait()
                await self._stop_writer(proc)
            self._proc = None
        self._lock.release()

    async def _stop_writer(self, proc: Process) -> None:
        assert proc.stdin is not None and self._replies is not None
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await proc.stdin.aclose()  # the writer finishes, then answers a last Ack
        with anyio.move_on_after(10):
            with contextlib.suppress(StoreError):
                last = await self._receive()
                self.writer_cpu_s = last.cpu_s
            await proc.wait()
        if proc.returncode is None:
            _logger.error("store %s: the writer did not stop; killing it", self.path)
            proc.kill()
            await proc.wait()
        await proc.aclose()

    # ------------------------------------------------------------------ the flusher
    async def _flusher(self) -> None:
        """Send batches and take the writer's answers, up to :data:`IN_FLIGHT` at once;
        ends once closing with nothing left, or once the writer is gone."""
        sent, answered = anyio.create_memory_object_stream[_Sent](IN_FLIGHT - 1)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._answers, answered)
                async with sent:
                    while await self._send_next(sent):
                        pass
        except Exception as exc:
            # An anyio task group wraps what it raises: unwrap a single failure.
            cause = exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) else exc
            self._break(cause, "its flusher failed")
            raise cause from None
        finally:
            self._flusher_done.set()

    async def _send_next(self, sent: MemoryObjectSendStream[_Sent]) -> bool:
        while not (self._dirty or self._gone):
            if self._closing or self._broken is not None:
                return False
            self._asleep = True
            self._wake = anyio.Event()
            await self._wake.wait()
        if not self._closing and self._want <= self._committed:
            with anyio.move_on_after(LINGER_S):  # nobody waits: gather a bigger batch
                await self._hurry.wait()
        if self._retry_at:  # the last write failed: give the disk a moment
            await anyio.sleep_until(self._retry_at)
            self._retry_at = 0.0
        if self._broken is not None:
            return False
        self._hurry = anyio.Event()
        batch, self._dirty = self._dirty, {}
        gone, self._gone = self._gone, set()
        upto = self._recorded
        body = encode_batch(upto, batch.values(), gone)
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            # Queued for the answer first: this waits while IN_FLIGHT batches are out.
            await sent.send(_Sent(upto, batch, gone, time.monotonic()))
            await proc.stdin.send(frame(body))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._break(exc)
            return False
        self._sent_upto = upto
        return True

    async def _answers(self, answered: MemoryObjectReceiveStream[_Sent]) -> None:
        async with answered:
            async for batch in answered:
                try:
                    ack = await self._receive()
                    if ack.upto != batch.upto:
                        raise StoreError(f"answered batch {ack.upto}, expected {batch.upto}")
                except StoreError as exc:
                    self._break(exc)
                    return
                self._answered(batch, ack)

    def _answered(self, batch: _Sent, ack: Ack) -> None:
        if ack.error is not None:
            _logger.error("store %s: write failed, will retry: %s", self.path, ack.error)
            self._error = ack.error
            # Its tasks go out again, as they are by then. Batches sent meanwhile must
            # not count as committing these changes: only one sent after this does.
            for task_id, task in batch.tasks.items():
                if task.seq not in self._gone:
                    self._dirty.setdefault(task_id, task)
            self._gone |= batch.gone
            self._void_upto = self._sent_upto
            self._retry_at = anyio.current_time() + RETRY_S
            self._release_waiters(failed=True)
            if self._closing:
                _logger.error("store %s: closing with unwritten changes", self.path)
                self._broken = f"closing after a failed write ({ack.error})"
            elif self._asleep:
                self._asleep = False
                self._wake.set()
            return
        self.commits += 1
        self.rows_written += ack.rows
        self.commit_tally.observe(time.monotonic() - batch.sent_at, ack.rows)
        if batch.upto > self._void_upto:
            self._committed = batch.upto
            self._error = None
        self._release_waiters()

    def _break(self, exc: BaseException, what: str = "its writer process stopped") -> None:
        """The store cannot write any more: every waiting and later commit fails, and the
        failure is fatal to the process (a store that never recovers must not leave a
        server answering 503 for ever)."""
        self._broken = f"{what} ({one_line(exc)})"
        _logger.error("store %s: %s", self.path, self._broken)
        self._release_waiters(failed=True)
        self._wake.set()
        if self._on_fatal is not None and not self._closing:
            self._on_fatal(f"store {self.path}: {self._broken}")

    async def _receive(self) -> Ack:
        replies = self._replies
        assert replies is not None
        try:
            (size,) = HEADER.unpack(await replies.receive_exactly(HEADER.size))
            return decode_ack(await replies.receive_exactly(size))
        except (anyio.IncompleteRead, anyio.EndOfStream) as exc:
            raise StoreError("the writer process exited") from exc
        except msgspec.DecodeError as exc:
            raise StoreError(f"the writer process answered nonsense: {exc}") from exc

    # ------------------------------------------------------------------ opening
