"""Writing the instance's tasks to PostgreSQL: group commit, batched, fenced.

The engine records each change (:meth:`PgJournal.changed`; the loop never waits), and two
flushers write what is dirty, each as one transaction of at most three statements for its
whole batch, sent as one pipeline (one round trip): the **submission lane** writes new
tasks (one multi-row ``INSERT``) and forgets refused ones; the **change lane** writes
changes of tasks this instance holds (one ``UPDATE ... FROM unnest(...)`` fenced by the
instance's id). A submission waits only for its own lane: at 1,000 submissions a second
its commit no longer queues behind the updates of the tasks that are finishing (one lane
took 4 ms a write, and a submission waited for the write in flight and then its own).
The lanes cannot write one task out of order: a task is new (``seq == 0``) until its
``INSERT`` has committed, and nothing changes it before its submission returns.

Concurrent submissions share a transaction, and a task started and finished within one
gathering window is one row write. Changes recorded by a bulk action (:data:`~.quiet.QUIET`
set) are written last in their transaction, after ``workerpool.quiet`` is turned on: the
other instances do not hear them one by one.

While PostgreSQL is unreachable the flushers retry with a backoff that doubles up to
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


class _Lane:
    """One flusher's share of the changes: what is dirty, the commit counters and who
    waits on them."""

    __slots__ = (
        "committed",
        "degraded",
        "dirty",
        "done",
        "forgotten",
        "hurry",
        "name",
        "quiet",
        "recorded",
        "waiters",
        "wake",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.dirty: dict[str, Task] = {}
        self.forgotten: set[str] = set()
        self.quiet: set[str] = set()
        """Dirty tasks whose last change was a bulk action's."""
        self.recorded = 0
        self.committed = 0
        self.waiters: deque[tuple[int, anyio.Event]] = deque()
        self.wake = anyio.Event()
        self.hurry = anyio.Event()
        self.done = anyio.Event()
        self.degraded: str | None = None

    def record(self, task: Task, quiet: bool) -> None:
        self.dirty[task.id] = task
        if quiet:
            self.quiet.add(task.id)
        else:
            self.quiet.discard(task.id)
        self.recorded += 1
        self.wake.set()

    def release(self, *, failed: bool) -> None:
        waiters = self.waiters
        while waiters and (failed or waiters[0][0] <= self.committed):
            waiters.popleft()[1].set()

    def failed(self, batch: dict[str, Task], forgotten: set[str], quiet: set[str]) -> None:
        """Put a batch that could not be written back (as its tasks are by the next try)."""
        # Quiet still, unless changed again meanwhile (that change said which it is).
        self.quiet |= {i for i in quiet if i not in self.dirty}
        for task_id, task in batch.items():
            self.dirty.setdefault(task_id, task)
        self.forgotten |= forgotten
        self.release(failed=True)


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
        self._new = _Lane("submission")
        self._held = _Lane("change")
        self._closing = False
        self.batches = 0
        self.commit_tally = CommitTally()
        """Each commit's latency and rows (tasks and forgotten ids), for ``GET /metrics``."""
        self.rows_written = 0

    @property
    def degraded(self) -> str | None:
        """Why the last write failed (``None`` while writes succeed)."""
        return self._new.degraded or self._held.degraded

    # ------------------------------------------------------------------ the loop side
    async def open(self, tg: TaskGroup, on_fatal: Fatal) -> list[Task]:
        """Connect, set up the schema, join the cluster (``StoreError`` when that cannot
        be done), then start the flushers. A cluster recovers nothing at start: another
        instance's tasks are its own until its lease expires (see ``cluster.py``)."""
        if self._on_open is not None:
            await self._on_open()
        for lane in (self._new, self._held):
            tg.start_soon(
                partial(supervised, restart=False, logger=_logger),
                f"store: the PostgreSQL {lane.name} writer",
                partial(self._flusher, lane),
                on_fatal,
            )
        return []

    def changed(self, task: Task) -> None:
        (self._new if task.seq == 0 else self._held).record(task, QUIET.get())

    def forget(self, tasks: Iterable[Task]) -> None:
        """Tasks of a refused submission: never to be written (and deleted, should an
        uncertain commit have written them)."""
        lane = self._new
        for task in tasks:
            lane.dirty.pop(task.id, None)
            lane.quiet.discard(task.id)
            if task.seq == 0:
                lane.forgotten.add(task.id)
            lane.recorded += 1
        lane.wake.set()

    async def commit(self, *, fail_fast: bool = False, new_only: bool = False) -> None:
        """``new_only``: a submission waits for the submission lane only, not for the
        changes of other tasks being written meanwhile."""
        for lane in (self._new,) if new_only else (self._new, self._held):
            await self._commit(lane, fail_fast)

    async def _commit(self, lane: _Lane, fail_fast: bool) -> None:
        target = lane.recorded
        if lane.committed >= target:
            return
        if self._closing:
            raise StoreUnavailable("the store is closing")
        if fail_fast and self.degraded is not None:
            raise StoreUnavailable(f"PostgreSQL: {self.degraded}", retry_after_s=1.0)
        event = anyio.Event()
        lane.waiters.append((target, event))
        lane.hurry.set()
        await event.wait()
        if lane.committed < target:
            raise StoreUnavailable(f"PostgreSQL: {self.degraded}", retry_after_s=1.0)

    async def close(self) -> None:
        """Write what is left (a last attempt) and stop the flushers."""
        self._closing = True
        for lane in (self._new, self._held):
            lane.wake.set()
            lane.hurry.set()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(10):
                await self._new.done.wait()
                await self._held.done.wait()
            if self._on_close is not None:
                await self._on_close()

    # ------------------------------------------------------------------ the flushers
    async def _flusher(self, lane: _Lane) -> None:
        backoff = FIRST_BACKOFF_S
        try:
            while True:
                while not (lane.dirty or lane.forgotten):
                    if self._closing:
                        return
                    lane.wake = anyio.Event()
                    await lane.wake.wait()
                if not self._closing and not lane.waiters:
                    with anyio.move_on_after(LINGER_S):
                        await lane.hurry.wait()
                lane.hurry = anyio.Event()
                batch, lane.dirty = lane.dirty, {}
                forgotten, lane.forgotten = lane.forgotten, set()
                quiet, lane.quiet = lane.quiet, set()
                upto = lane.recorded
                try:
                    started = time.monotonic()
                    lost = await self._write(list(batch.values()), forgotten, quiet)
                    self.commit_tally.observe(
                        time.monotonic() - started, len(batch) + len(forgotten)
                    )
                except (psycopg.Error, PoolTimeout, OSError) as exc:
                    why = describe(exc)
                    if lane.degraded is None:
                        _logger.error("store: cannot write to PostgreSQL, retrying: %s", why)
                    lane.degraded = why
                    lane.failed(batch, forgotten, quiet)
                    if self._closing:
                        _logger.error("store: closing with unwritten changes: %s", exc)
                        return
                    delay = backoff * (0.5 + random.random())
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
                    await anyio.sleep(delay)
                    continue
                backoff = FIRST_BACKOFF_S
                if lane.degraded is not None:
                    _logger.warning("store: writing again after: %s", lane.degraded)
                    lane.degraded = None
                lane.committed = upto
                lane.release(failed=False)
                if lost and self._on_lost is not None:
                    self._on_lost(lost)
        finally:
            lane.release(failed=True)
            lane.done.set()

    async def _write(self, tasks: list[Task], forgotten: set[str], quiet: set[str]) -> list[Task]:
        """The batch's statements (the ``quiet`` ids last, unannounced): one on its own
        (the common case: a lane's batch is all new or all held tasks), more in one
        transaction. Returns the tasks whose lease was lost."""
        steps: list[_Step] = []
        if forgotten:
            steps.append((self._forget, (list(forgotten),), None))
        if quiet := quiet & {t.id for t in tasks}:
            self._plan(steps, [t for t in tasks if t.id not in quiet])
            steps.append((HUSH, None, None))
            self._plan(steps, [t for t in tasks if t.id in quiet])
        else:
            self._plan(steps, tasks)
        lost: list[Task] = []
        async with self._pool.connection() as conn:
            if len(steps) == 1:  # atomic on its own: one round trip, no BEGIN or COMMIT
                lost += await _run(conn, steps[0])
            else:
                async with conn.transaction():
                    for step in steps:
                        lost += await _run(conn, step)
        self.batches += 1
        self.rows_written += len(tasks)
        return lost

    def _plan(self, steps: list[_Step], tasks: list[Task]) -> None:
        """Add the statements that write ``tasks``: new ones inserted (which gives them
        their ``seq``), held ones updated (fenced: those not written lost their lease)."""
        new = [t for t in tasks if t.seq == 0]
        held = [t for t in tasks if t.seq != 0]
        if new:
            if parents := sorted({p for t in new for p in t.depends_on or ()}):
                steps.append((self._lock_parents, (parents,), None))

            def numbered(found: list[Any]) -> list[Task]:
                seqs: dict[str, int] = {r[0]: r[1] for r in found}
                for task in new:
                    task.seq = seqs[task.id]
                return []

            steps.append((self._insert, rows.insert_params(new), numbered))
        if held:

            def fenced(found: list[Any]) -> list[Task]:
                written = {r[0] for r in found}
                return [t for t in held if t.id not in written] if len(written) != len(held) else []

            steps.append((self._update, rows.update_params(held, self.instance_id), fenced))


_Step = tuple[str, Any, Callable[[list[Any]], list[Task]] | None]
"""A statement, its parameters, and what reads its rows (``None``: nothing to read)."""


async def _run(conn: AsyncConnection[Any], step: _Step) -> list[Task]:
    query, params, read = step
    cur = await conn.execute(query, params)
    return read(await cur.fetchall()) if read is not None else []
