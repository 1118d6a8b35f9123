"""Writing the instance's tasks to PostgreSQL: group commit, batched, fenced.

The engine records each change (:meth:`PgJournal.changed`; the loop never waits), and a
flusher writes what is dirty as one transaction of at most three statements, each for the
whole batch: new tasks (one multi-row ``INSERT``), changes of tasks this instance runs
(one ``UPDATE ... FROM unnest(...)`` fenced by the instance's id), and tasks to forget
(a submission that was refused). Concurrent submissions share that transaction, and a
task started and finished within one gathering window is one row write. Changes recorded
by a bulk action (:data:`~.quiet.QUIET` set) are written last in that transaction, after
``workerpool.quiet`` is turned on: the other instances do not hear them one by one.

While PostgreSQL is unreachable the flusher retries with a backoff that doubles up to
:data:`MAX_BACKOFF_S`, with jitter; running tasks go on, their changes stay dirty and are
written after the reconnection. Submissions meanwhile fail at once (``StoreUnavailable``:
the engine then forgets their tasks, and they are deleted if an uncertain commit did
write them after all). The state is readable as :attr:`PgJournal.degraded`.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

import anyio
import psycopg
from anyio.abc import TaskGroup
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...core.errors import StoreUnavailable
from ...core.models import Task
from ...core.supervise import Fatal, supervised
from ...core.tally import CommitTally
from . import rows
from .connect import describe
from .quiet import HUSH, QUIET

LINGER_S = 0.005
"""With nobody waiting for a commit, the flusher gathers changes for this long first."""
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
_logger = logging.getLogger("workerpool_tui.store")

FORGET = "DELETE FROM {s}.tasks WHERE id = ANY(%s::text[]) AND status = 'pending'"


class PgJournal:
    """The :class:`~workerpool_tui.core.journal.Journal` of the cluster store."""

    durable = True

    def __init__(
        self,
        pool: AsyncConnectionPool,
        schema: str,
        instance_id: int,
        *,
        on_lost: Callable[[list[Task]], None] | None = None,
        on_open: Callable[[], Awaitable[None]] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._on_open = on_open
        self._on_close = on_close
        self._insert = rows.INSERT.format(s=schema)
        self._lock_parents = rows.LOCK_PARENTS.format(s=schema)
        self._update = rows.UPDATE.format(s=schema)
        self._forget = FORGET.format(s=schema)
        self.instance_id = instance_id
        self._on_lost = on_lost
        self._dirty: dict[str, Task] = {}
        self._forgotten: set[str] = set()
        self._quiet: set[str] = set()
        """Dirty tasks whose last change was a bulk action's."""
        self._recorded = 0
        self._committed = 0
        self._waiters: deque[tuple[int, anyio.Event]] = deque()
        self._wake = anyio.Event()
        self._hurry = anyio.Event()
        self._closing = False
        self._done = anyio.Event()
        self.degraded: str | None = None
        """Why the last write failed (``None`` while writes succeed)."""
        self.batches = 0
        self.commit_tally = CommitTally()
        """Each commit's latency and rows (tasks and forgotten ids), for ``GET /metrics``."""
        self.rows_written = 0

    # ------------------------------------------------------------------ the loop side
    async def open(self, tg: TaskGroup, on_fatal: Fatal) -> list[Task]:
        """Connect, set up the schema, join the cluster (``StoreError`` when that cannot
        be done), then start the flusher. A cluster recovers nothing at start: another
        instance's tasks are its own until its lease expires (see ``cluster.py``)."""
        if self._on_open is not None:
            await self._on_open()
        tg.start_soon(
            partial(supervised, restart=False, logger=_logger),
            "store: the PostgreSQL flusher",
            self._flusher,
            on_fatal,
        )
        return []

    def changed(self, task: Task) -> None:
        self._dirty[task.id] = task
        if QUIET.get():
            self._quiet.add(task.id)
        else:
            self._quiet.discard(task.id)
        self._recorded += 1
        self._wake.set()

    def forget(self, tasks: Iterable[Task]) -> None:
        """Tasks of a refused submission: never to be written (and deleted, should an
        uncertain commit have written them)."""
        for task in tasks:
            self._dirty.pop(task.id, None)
            if task.seq == 0:
                self._forgotten.add(task.id)
            self._recorded += 1
        self._wake.set()

    async def commit(self, *, fail_fast: bool = False) -> None:
        target = self._recorded
        if self._committed >= target:
            return
        if self._closing:
            raise StoreUnavailable("the store is closing")
        if fail_fast and self.degraded is not None:
            raise StoreUnavailable(f"PostgreSQL: {self.degraded}", retry_after_s=1.0)
        event = anyio.Event()
        self._waiters.append((target, event))
        self._hurry.set()
        await event.wait()
        if self._committed < target:
            raise StoreUnavailable(f"PostgreSQL: {self.degraded}", retry_after_s=1.0)

    async def close(self) -> None:
        """Write what is left (a last attempt) and stop the flusher."""
        self._closing = True
        self._wake.set()
        self._hurry.set()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(10):
                await self._done.wait()
            if self._on_close is not None:
                await self._on_close()

    def _release(self, *, failed: bool) -> None:
        waiters = self._waiters
        while waiters and (failed or waiters[0][0] <= self._committed):
            waiters.popleft()[1].set()

    # ------------------------------------------------------------------ the flusher
    async def _flusher(self) -> None:
        backoff = FIRST_BACKOFF_S
        try:
            while True:
                while not (self._dirty or self._forgotten):
                    if self._closing:
                        return
                    self._wake = anyio.Event()
                    await self._wake.wait()
                if not self._closing and not self._waiters:
                    with anyio.move_on_after(LINGER_S):
                        await self._hurry.wait()
                self._hurry = anyio.Event()
                batch, self._dirty = self._dirty, {}
                forgotten, self._forgotten = self._forgotten, set()
                quiet, self._quiet = self._quiet, set()
                upto = self._recorded
                try:
                    started = time.monotonic()
                    lost = await self._write(list(batch.values()), forgotten, quiet)
                    self.commit_tally.observe(
                        time.monotonic() - started, len(batch) + len(forgotten)
                    )
                except (psycopg.Error, PoolTimeout, OSError) as exc:
                    self._failed(batch, forgotten, quiet, describe(exc))
                    if self._closing:
                        _logger.error("store: closing with unwritten changes: %s", exc)
                        return
                    delay = backoff * (0.5 + random.random())
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
                    await anyio.sleep(delay)
                    continue
                backoff = FIRST_BACKOFF_S
                if self.degraded is not None:
                    _logger.warning("store: writing again after: %s", self.degraded)
                    self.degraded = None
                self._committed = upto
                self._release(failed=False)
                if lost and self._on_lost is not None:
                    self._on_lost(lost)
        finally:
            self._release(failed=True)
            self._done.set()

    def _failed(
        self, batch: dict[str, Task], forgotten: set[str], quiet: set[str], why: str
    ) -> None:
        if self.degraded is None:
            _logger.error("store: cannot write to PostgreSQL, retrying: %s", why)
        self.degraded = why
        # Quiet still, unless changed again meanwhile (that change said which it is).
        self._quiet |= {i for i in quiet if i not in self._dirty}
        for task_id, task in batch.items():
            self._dirty.setdefault(task_id, task)  # as they are by the next attempt
        self._forgotten |= forgotten
        self._release(failed=True)

    async def _write(self, tasks: list[Task], forgotten: set[str], quiet: set[str]) -> list[Task]:
        """One transaction for the batch (the ``quiet`` ids last, unannounced); returns
        the tasks whose lease was lost."""
        lost: list[Task] = []
        async with self._pool.connection() as conn, conn.transaction():
            if forgotten:
                await conn.execute(self._forget, (list(forgotten),))
            if quiet := quiet & {t.id for t in tasks}:
                loud = [t for t in tasks if t.id not in quiet]
                lost += await self._write_part(conn, loud)
                await conn.execute(HUSH)
                lost += await self._write_part(conn, [t for t in tasks if t.id in quiet])
            else:
                lost += await self._write_part(conn, tasks)
        self.batches += 1
        self.rows_written += len(tasks)
        return lost

    async def _write_part(self, conn: AsyncConnection[Any], tasks: list[Task]) -> list[Task]:
        new = [t for t in tasks if t.seq == 0]
        held = [t for t in tasks if t.seq != 0]
        lost: list[Task] = []
        if new:
            parents = sorted({p for t in new for p in t.depends_on or ()})
            if parents:
                await conn.execute(self._lock_parents, (parents,))
            cur = await conn.execute(self._insert, rows.insert_params(new))
            seqs: dict[str, int] = {r[0]: r[1] for r in await cur.fetchall()}
            for task in new:
                task.seq = seqs[task.id]
        if held:
            cur = await conn.execute(self._update, rows.update_params(held, self.instance_id))
            written = {r[0] for r in await cur.fetchall()}
            if len(written) != len(held):
                lost = [t for t in held if t.id not in written]
        return lost
