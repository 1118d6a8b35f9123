"""Where a cluster's pending tasks wait, and how a worker gets the next one.

Runnable tasks live in the ``tasks`` table. When workers of this instance go idle, the
claimer takes at most that many in one statement (``FOR UPDATE SKIP LOCKED``, priority
then submission order), marks them running under this instance's id, and hands them to
the engine; a worker then pops one from the small local buffer without a round trip. An
instance never claims more than its idle workers can start, so no instance hoards work
another one could run.

The claimer sleeps while nothing is runnable. It wakes on a ``<schema>_wake`` notification
(sent once per statement that made tasks runnable, or that made some wait for a time: then
with that time), on a worker going idle, at the next due time of a waiting task (a retry's
backoff), and at least every :data:`POLL_S` (should a notification be lost). An idle
cluster thus makes one claim query per instance every :data:`POLL_S`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence

import anyio
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...core.models import Task, TaskStatus
from ...core.tally import CommitTally
from . import rows
from .connect import describe
from .schema import NOW

POLL_S = 2.0
"""The longest the claimer sleeps while workers are idle."""
GATHER_S = 0.002
"""How long a claim waits for more of the pool to go idle (see ``_gather``)."""
MAX_CLAIM = 500
_logger = logging.getLogger("workerpool_tui.store")

CLAIM = f"""
WITH due AS (
    UPDATE {{s}}.tasks SET run_at = NULL
    WHERE status = 'pending' AND run_at <= {NOW}
), picked AS (
    SELECT seq FROM {{s}}.tasks
    WHERE status = 'pending' AND run_at IS NULL AND blocked = 0
    ORDER BY priority DESC, seq
    LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {{s}}.tasks AS t
SET status = 'running', owner = %(me)s, instance = %(name)s, attempts = t.attempts + 1,
    started_at = {NOW}, finished_at = NULL, progress = 0, message = NULL
FROM picked WHERE t.seq = picked.seq
RETURNING {", ".join("t." + c.strip() for c in rows.COLUMNS.split(","))}
"""

NEXT_DUE = f"""
SELECT min(run_at) - {NOW} FROM {{s}}.tasks WHERE status = 'pending' AND run_at IS NOT NULL
"""

UNCLAIM = """
UPDATE {s}.tasks SET status = 'pending', owner = NULL, attempts = attempts - 1,
    started_at = NULL
WHERE id = ANY(%s::text[]) AND owner = %s AND status = 'running'
"""
"""Claimed tasks no worker started (shutdown): back in line, as if never claimed."""


class SharedBacklog:
    """The engine's queue in the cluster store (the local one is ``core/queue.py``)."""

    shared = True

    def __init__(
        self,
        pool: AsyncConnectionPool,
        schema: str,
        instance_id: int,
        instance_name: str,
        capacity: int,
        *,
        idle_workers: Callable[[], int],
        pool_size: Callable[[], int],
        claimed: Callable[[list[Task]], None],
        waiting: Callable[[], int],
        release: Callable[[Task], None],
        admitted: Callable[[int], None],
    ) -> None:
        self._pool = pool
        self._claim = CLAIM.format(s=schema)
        self._next_due = NEXT_DUE.format(s=schema)
        self._unclaim = UNCLAIM.format(s=schema)
        self._me = instance_id
        self._name = instance_name
        self.capacity = capacity
        self._idle_workers = idle_workers
        self._pool_size = pool_size
        self._claimed = claimed
        self._waiting = waiting
        """How many runnable tasks wait in the cluster (from counts at most a second old)."""
        self._release_task = release
        self._admitted = admitted
        self._buffer: deque[Task] = deque()
        self._wake = anyio.Event()
        self._maybe_more = True
        """The last claim was full, or something was made runnable since: claim again."""
        self._due_at = math.inf
        """``time.monotonic()`` when the earliest waiting task becomes due."""
        self._due_unknown = True
        """Read the next due time from the table (at start, after a reconnection); after
        that, notifications (``at EPOCH``) and this instance's own retries tell it."""
        self.claims = 0
        self.claimed_total = 0
        self.claim_tally = CommitTally()
        """Each claim's latency and tasks (``GET /metrics``): an instance runs at most
        ``workers / claim latency`` tasks a second, one claim at a time."""

    # ------------------------------------------------------------------ the engine's side
    def __len__(self) -> int:
        """Runnable tasks waiting in the whole cluster (the stats' queue depth)."""
        return self._waiting()

    @property
    def free(self) -> int:
        return max(0, self.capacity - self._waiting())

    def push_many(self, tasks: Sequence[Task], *, force: bool = False) -> None:
        """New tasks are in the table already (the insert's notification wakes claimers):
        count them as waiting until the cluster's counts are read again."""
        self._admitted(len(tasks))

    def pop(self) -> Task | None:
        buffer = self._buffer
        while buffer:
            task = buffer.popleft()
            if task.status is TaskStatus.PENDING:
                return task
        return None

    def discard(self, task: Task) -> None:
        """A buffered task was cancelled: ``pop`` skips it (it is no longer pending)."""

    def has_next(self) -> bool:
        return bool(self._buffer)

    def idle(self) -> None:
        """A worker went idle: there may be work to claim."""
        self._wake.set()

    def notify(self, payload: str) -> None:
        """A ``<schema>_wake`` notification: tasks became runnable (``N``), or will be at
        a time (``at EPOCH``)."""
        if payload.startswith("at "):
            try:
                self.due_in(float(payload[3:]) - time.time())
            except ValueError:
                return
            return
        self.notify_runnable()

    def notify_runnable(self) -> None:
        """Tasks may be runnable (a notification; a reconnection, after which the next
        due time is read again too)."""
        self._maybe_more = True
        self._wake.set()

    def reconnected(self) -> None:
        """Notifications may have been missed: look for work, and read the next due time."""
        self._due_unknown = True
        self.notify_runnable()

    def defer(self, task: Task, delay_s: float) -> None:
        """A retry (or a task this instance gives up): back to the cluster, runnable by any
        instance once ``delay_s`` has passed (the journal writes it, releasing the lease)."""
        task.run_at = time.time() + delay_s
        self._release_task(task)
        self.due_in(delay_s)

    def forget(self, task: Task) -> None:
        """Drop a claimed, unstarted task from the buffer (this instance lost its lease)."""
        with contextlib.suppress(ValueError):
            self._buffer.remove(task)

    def due_in(self, delay_s: float) -> None:
        """A task of this instance waits ``delay_s`` (a retry): wake for it."""
        due = time.monotonic() + max(0.0, delay_s)
        if due < self._due_at:
            self._due_at = due
            self._wake.set()

    def held(self) -> list[Task]:
        return [t for t in self._buffer if t.status is TaskStatus.PENDING]

    # ------------------------------------------------------------------ the claimer
    async def run(self) -> None:
        """Claim whenever workers are idle and work may be there; see the module doc."""
        last_poll = time.monotonic()
        while True:
            idle = self._idle_workers() - len(self._buffer)
            now = time.monotonic()
            due = now >= self._due_at or now - last_poll >= POLL_S
            if idle > 0 and (self._maybe_more or due or self._due_unknown):
                idle = await self._gather(idle)
                if due:
                    last_poll = now
                    if now >= self._due_at:
                        self._due_at = math.inf
                if self._due_unknown:
                    self._due_unknown = False
                    await self._refresh_due()
                self._maybe_more = False
                got = await self._claim_up_to(min(idle, MAX_CLAIM))
                if got >= min(idle, MAX_CLAIM):
                    self._maybe_more = True
                continue
            self._wake = anyio.Event()
            timeout = POLL_S if idle > 0 else math.inf
            timeout = min(timeout, max(0.0, self._due_at - now))
            with anyio.move_on_after(timeout):
                await self._wake.wait()

    async def _gather(self, idle: int) -> int:
        """Workers go idle one by one as they finish: a claim for each would be a round
        trip (and a transaction) per task. Wait a moment, at most :data:`GATHER_S`, until
        a good share of the pool is idle, then claim for all of them at once."""
        target = max(1, min(MAX_CLAIM, self._pool_size() // 2))
        if idle >= target:
            return idle
        with anyio.move_on_after(GATHER_S):
            while idle < target:
                self._wake = anyio.Event()
                await self._wake.wait()
                idle = self._idle_workers() - len(self._buffer)
        return self._idle_workers() - len(self._buffer)

    async def _claim_up_to(self, n: int) -> int:
        started = time.monotonic()
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(self._claim, {"n": n, "me": self._me, "name": self._name})
                found = await cur.fetchall()
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            _logger.warning("store: cannot claim tasks: %s", describe(exc))
            self._maybe_more = True
            await anyio.sleep(1.0)  # the journal reports the outage; try again soon
            return 0
        self.claims += 1
        self.claim_tally.observe(time.monotonic() - started, len(found))
        if not found:
            return 0
        tasks = [rows.task(r) for r in found]
        for task in tasks:
            task.run_at = None
        tasks.sort(key=lambda t: (-t.priority, t.seq))
        for task in tasks:
            # The engine starts them as it starts any pending task.
            task.status = TaskStatus.PENDING
            task.attempts -= 1
        self._buffer.extend(tasks)
        self.claimed_total += len(tasks)
        self._claimed(tasks)
        return len(tasks)

    async def _refresh_due(self) -> None:
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(self._next_due)
                row = await cur.fetchone()
        except (psycopg.Error, PoolTimeout, OSError):
            return
        if row and row[0] is not None:
            self.due_in(float(row[0]))

    async def release(self) -> None:
        """Give back what was claimed and not started (at shutdown)."""
        held = self.held()
        self._buffer.clear()
        if not held:
            return
        try:
            async with self._pool.connection() as conn:
                await conn.execute(self._unclaim, ([t.id for t in held], self._me))
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            _logger.warning(
                "store: could not give back %d claimed task(s): %s (they are re-queued"
                " once this instance's lease expires)",
                len(held),
                describe(exc),
            )
