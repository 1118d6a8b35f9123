"""The instances of a cluster: joining, heartbeats, leases, recovery, cancels, retention.

Each process joins with a random 63-bit id (a restart is a new instance) and its name
(``[store] instance_name``, default ``host:pid``). Every ``heartbeat`` it renews its row
(with its pool figures, for the Instances view) and learns which of its running tasks were
asked to cancel (a lost notification is caught there).

**Leases.** A task running on an instance is leased to it while the instance heartbeats:
once an instance's heartbeat is older than ``lease`` by the database's clock, any other
instance marks it dead and re-queues (or fails, per ``recover_running``) its running tasks.
Every write of a running task is fenced by the owner's id, so a task is never written by
two instances. An instance that could not renew its lease for ``lease - heartbeat`` by its
own clock stops its running tasks itself (they are re-queued elsewhere), so a task never
runs on two live instances at once. An instance that reconnects after an outage waits a
whole ``lease`` before it declares anybody dead: the others get the time to renew too.

**Retention** (completed and cancelled tasks after ``cleanup_completed_tasks_after``,
failed ones after ``keep_failed_for``, the oldest final ones past ``max_tracked_tasks``)
runs on one instance at a time, under a transaction-level advisory lock.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...core.instance_view import InstanceInfo
from ...core.models import Task
from . import rows
from .connect import describe
from .quiet import HUSH, QUIET
from .schema import NOW

_logger = logging.getLogger("workerpool_tui.store")
RETENTION_CHUNK = 5_000
CANCEL_POLL_S = 0.05


class InstanceFigures(msgspec.Struct, frozen=True):
    """What an instance reports with each heartbeat."""

    workers: int
    busy: int
    min_workers: int
    max_workers: int
    paused: bool
    done: int
    failed: int


Instance = InstanceInfo
"""A row of the Instances view (the engine's own struct)."""


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


JOIN = f"""
INSERT INTO {{s}}.instances (id, name, host, pid, version, started_at, heartbeat_at, state)
VALUES (%s, %s, %s, %s, %s, {NOW}, {NOW}, 'running')
"""

HEARTBEAT = f"""
WITH before AS (SELECT state FROM {{s}}.instances WHERE id = %(me)s FOR UPDATE)
UPDATE {{s}}.instances SET heartbeat_at = {NOW},
    state = CASE WHEN %(stopping)s THEN 'stopping' ELSE 'running' END,
    workers = %(workers)s, busy = %(busy)s, min_workers = %(min)s, max_workers = %(max)s,
    paused = %(paused)s, done = %(done)s, failed = %(failed)s
FROM before WHERE id = %(me)s
RETURNING before.state,
    ARRAY(SELECT id FROM {{s}}.tasks WHERE owner = %(me)s AND cancel_requested)
"""

RECOVER = f"""
WITH dead AS (
    UPDATE {{s}}.instances SET state = 'dead'
    WHERE state IN ('running', 'stopping') AND heartbeat_at < {NOW} - %(lease)s
      AND id <> %(me)s
    RETURNING id, name
), taken AS (
    UPDATE {{s}}.tasks AS t SET
        status = CASE WHEN t.cancel_requested THEN 'cancelled'
                      WHEN %(requeue)s THEN 'pending' ELSE 'failed' END,
        owner = NULL, run_at = NULL, cancel_requested = false,
        progress = CASE WHEN t.cancel_requested OR NOT %(requeue)s THEN t.progress ELSE 0 END,
        finished_at = CASE WHEN t.cancel_requested OR NOT %(requeue)s THEN {NOW} END,
        message = CASE WHEN t.cancel_requested THEN 'cancelled by request'
                       WHEN %(requeue)s THEN 're-queued: instance ' || dead.name || ' stopped'
                       ELSE 'interrupted: instance ' || dead.name || ' stopped' END,
        error = CASE WHEN NOT t.cancel_requested AND NOT %(requeue)s
                     THEN json_build_object('type', 'interrupted', 'message',
                          'instance ' || dead.name || ' stopped while this task ran') END
    FROM dead WHERE t.owner = dead.id AND t.status = 'running'
    RETURNING t.id
)
SELECT (SELECT count(*) FROM dead), (SELECT count(*) FROM taken),
       (SELECT string_agg(name, ', ') FROM dead)
"""

LEAVE = f"""
UPDATE {{s}}.instances SET state = 'stopped', heartbeat_at = {NOW}, busy = 0, following = false
WHERE id = %s
"""

INSTANCES = f"""
SELECT id, name, host, pid, version,
    CASE WHEN state IN ('running', 'stopping') AND heartbeat_at < {NOW} - %(lease)s
         THEN 'unresponsive' ELSE state END,
    workers, busy, min_workers, max_workers, paused, done, failed, started_at, heartbeat_at,
    {NOW} - heartbeat_at
FROM {{s}}.instances
WHERE state IN ('running', 'stopping') OR heartbeat_at > {NOW} - %(keep)s
ORDER BY started_at, id
"""

CANCEL_PENDING = f"""
UPDATE {{s}}.tasks SET status = 'cancelled', finished_at = {NOW},
    message = 'cancelled by request'
WHERE id = %s AND status = 'pending'
RETURNING {rows.COLUMNS}
"""

ASK_CANCEL = """
WITH asked AS (
    UPDATE {s}.tasks SET cancel_requested = true
    WHERE id = %s AND status = 'running' RETURNING owner, id
)
SELECT owner, pg_notify('{s}_cancel', owner || ':' || id) FROM asked
"""

GET = f"SELECT {rows.COLUMNS} FROM {{s}}.tasks WHERE id = %s"

RETENTION = f"""
WITH gone AS (
    DELETE FROM {{s}}.tasks WHERE seq IN (
        SELECT seq FROM {{s}}.tasks
        WHERE (status IN ('completed', 'cancelled') AND finished_at < {NOW} - %(keep_done)s)
           OR (status = 'failed' AND finished_at < {NOW} - %(keep_failed)s)
        LIMIT {RETENTION_CHUNK}
    ) RETURNING 1
)
SELECT count(*) FROM gone
"""

OVERFLOW = f"""
WITH total AS (
    SELECT sum(pending + scheduled + blocked + running + completed + failed + cancelled) AS n
    FROM {{s}}.counts
), gone AS (
    DELETE FROM {{s}}.tasks WHERE seq IN (
        SELECT seq FROM {{s}}.tasks
        WHERE status IN ('completed', 'failed', 'cancelled')
        ORDER BY (status = 'failed'), finished_at
        LIMIT LEAST({RETENTION_CHUNK}, GREATEST(0, (SELECT n FROM total) - %(cap)s))
    ) RETURNING 1
)
SELECT count(*) FROM gone
"""


class Cluster:
    """This instance's membership: see the module docstring."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        schema: str,
        *,
        instance_id: int,
        name: str,
        version: str,
        lease_s: float,
        heartbeat_s: float,
        requeue: bool,
        figures: Callable[[], InstanceFigures],
        cancel_local: Callable[[str], object],
        lease_lost: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._schema = schema
        self.id = instance_id
        self.name = name
        self.version = version
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self._requeue = requeue
        self._figures = figures
        self._cancel_local = cancel_local
        self._lease_lost = lease_lost
        self._sql = {
            key: text.format(s=schema)
            for key, text in (
                ("heartbeat", HEARTBEAT),
                ("recover", RECOVER),
                ("leave", LEAVE),
                ("instances", INSTANCES),
                ("cancel_pending", CANCEL_PENDING),
                ("ask_cancel", ASK_CANCEL),
                ("get", GET),
                ("retention", RETENTION),
                ("overflow", OVERFLOW),
                ("join", JOIN),
            )
        }
        self.lease_until = time.monotonic() + lease_s - heartbeat_s
        """While ``time.monotonic()`` is below this, this instance's lease surely holds."""
        self.healthy_since: float | None = None
        """When heartbeats last started succeeding (``None`` while they fail)."""
        self.stopping = False
        self.recovered = 0

    async def join(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            self._sql["join"],
            (self.id, self.name, socket.gethostname(), os.getpid(), self.version),
        )
        self.lease_until = time.monotonic() + self.lease_s - self.heartbeat_s
        self.healthy_since = time.monotonic()

    # ------------------------------------------------------------------ heartbeats
    async def run(self) -> None:
        """Heartbeat, self-fence and recover, every ``heartbeat`` seconds."""
        while True:
            await self.beat()
            await anyio.sleep(self.heartbeat_s)

    async def beat(self) -> None:
        sent = time.monotonic()
        f = self._figures()
        try:
            async with self._pool.connection(timeout=self.heartbeat_s) as conn:
                cur = await conn.execute(
                    self._sql["heartbeat"],
                    {
                        "me": self.id,
                        "stopping": self.stopping,
                        "workers": f.workers,
                        "busy": f.busy,
                        "min": f.min_workers,
                        "max": f.max_workers,
                        "paused": f.paused,
                        "done": f.done,
                        "failed": f.failed,
                    },
                )
                row = await cur.fetchone()
                if row is None:  # our row is gone: join again
                    await self.join(conn)
                    row = ("running", [])
                was, cancels = row
                if was == "dead":
                    _logger.warning(
                        "instance %s was declared dead by another instance; its running"
                        " tasks were re-queued there: stopping ours",
                        self.name,
                    )
                    self._lease_lost()
                if self.healthy_since is None:
                    self.healthy_since = sent
                self.lease_until = sent + self.lease_s - self.heartbeat_s
                for task_id in cancels:
                    self._cancel_local(task_id)
                if time.monotonic() - self.healthy_since >= self.lease_s:
                    await self._recover(conn)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            self.healthy_since = None
            _logger.warning("store: heartbeat failed: %s", describe(exc))
            if time.monotonic() >= self.lease_until:
                self._lease_lost()

    async def _recover(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.execute(
            self._sql["recover"], {"lease": self.lease_s, "me": self.id, "requeue": self._requeue}
        )
        row = await cur.fetchone()
        if row and row[0]:
            _, taken, names = row
            self.recovered += taken
            verb = "re-queued" if self._requeue else "failed"
            _logger.warning(
                "instance(s) %s stopped heartbeating: %d of their running task(s) %s",
                names,
                taken,
                verb,
            )

    async def leave(self) -> None:
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                await conn.execute(self._sql["leave"], (self.id,))
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            _logger.warning("store: could not mark this instance stopped: %s", describe(exc))

    # ------------------------------------------------------------------ reading
    async def instances(self) -> list[Instance]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._sql["instances"], {"lease": self.lease_s, "keep": 86_400.0}
            )
            found = await cur.fetchall()
        return [
            Instance(
                id=f"{r[0]:016x}",
                name=r[1],
                host=r[2],
                pid=r[3],
                version=r[4],
                state=r[5],
                workers=r[6],
                busy=r[7],
                min_workers=r[8],
                max_workers=r[9],
                paused=r[10],
                done=r[11],
                failed=r[12],
                started_at=r[13],
                heartbeat_at=r[14],
                heartbeat_age_s=round(max(0.0, r[15]), 3),
                this=r[0] == self.id,
            )
            for r in found
        ]

    async def get(self, task_id: str) -> Task | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._sql["get"], (task_id,))
            row = await cur.fetchone()
        return None if row is None else rows.task(row)

    # ------------------------------------------------------------------ cancel
    async def cancel(self, task_id: str, wait_s: float) -> Task | None:
        """Cancel a task this instance does not run: a pending one in the table; a running
        one by asking its owner (a notification, and the row's flag its heartbeat reads),
        then waiting until it is final, at most ``wait_s`` (the owner confirms, or its
        lease expires and recovery cancels it). ``None`` when there is no such task.
        Within a bulk action (:data:`~.quiet.QUIET`) the change is not announced."""
        async with self._pool.connection() as conn, conn.transaction():
            if QUIET.get():
                await conn.execute(HUSH)
            cur = await conn.execute(self._sql["cancel_pending"], (task_id,))
            row = await cur.fetchone()
            if row is not None:
                return rows.task(row)
            await conn.execute(self._sql["ask_cancel"], (task_id,))
        deadline = anyio.current_time() + wait_s
        while True:
            task = await self.get(task_id)
            if task is None or task.status.final or anyio.current_time() >= deadline:
                return task
            await anyio.sleep(CANCEL_POLL_S)

    # ------------------------------------------------------------------ retention
    async def retention(self, keep_done_s: float, keep_failed_s: float, cap: int) -> int:
        """Drop final tasks past their retention, on one instance at a time."""
        dropped = 0
        async with self._pool.connection() as conn:
            for statement, params in (
                (self._sql["retention"], {"keep_done": keep_done_s, "keep_failed": keep_failed_s}),
                (self._sql["overflow"], {"cap": cap}),
            ):
                while True:
                    async with conn.transaction():
                        cur = await conn.execute(
                            "SELECT pg_try_advisory_xact_lock(hashtext(%s))",
                            (f"workerpool-tui janitor {self._schema}",),
                        )
                        got = await cur.fetchone()
                        if not (got and got[0]):
                            return dropped  # another instance is at it
                        cur = await conn.execute(statement, params)
                        n = await cur.fetchone()
                    count = int(n[0]) if n else 0
                    dropped += count
                    if count < RETENTION_CHUNK:
                        break
        return dropped
