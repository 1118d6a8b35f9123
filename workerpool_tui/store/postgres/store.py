"""The cluster store: the pieces of ``store/postgres`` put together for the engine.

:class:`PostgresStore` implements the engine's :class:`~workerpool_tui.core.storage.SharedStore`:
its journal writes this instance's tasks (``journal.py``), its backlog claims work for idle
workers (``backlog.py``), its index answers reads with queries (``index.py``), and in the
background it heartbeats and recovers (``cluster.py``), listens (``listener.py``) and keeps
the cluster's counts fresh while somebody reads them.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import psycopg
from psycopg_pool import PoolTimeout

from ...config import Config
from ...core.bus import BulkEvent
from ...core.errors import NotFound, StoreError
from ...core.index import (
    AMBIGUOUS_CANDIDATES,
    MIN_ID_PREFIX,
    TaskCounts,
    pick_by_prefix,
    waiting_filter,
)
from ...core.models import Task, TaskStatus
from ...core.registry import Registry
from ...core.storage import PendingCancel
from .backlog import SharedBacklog
from .bulkops import PgBulk
from .cluster import Cluster, Instance, InstanceFigures, default_name
from .connect import check_url, connect, describe, ensure_schema, make_pool, redact
from .index import COUNTS_TTL_S, WAITING, PgIndex
from .journal import PgJournal
from .listener import Listener
from .quiet import BULK_TAG, QUIET
from .schedules import PgKeys, PgSchedules
from .schema import channels
from .type_settings import PgTypeSettings

if TYPE_CHECKING:
    from ...core.engine import Engine

POOL_SIZE = 6
"""Connections per instance: the journal's two lanes, claims, reads and heartbeats."""
COUNTS_READERS_S = 2.0
"""Counts are refreshed while somebody read them within this long."""
_logger = logging.getLogger("workerpool_tui.store")


class SharedIndex:
    """Reads for the engine: the database, with this instance's live records preferred."""

    def __init__(self, pg: PgIndex, registry: Registry) -> None:
        self._pg = pg
        self._registry = registry
        self.read_at = 0.0
        """When the counts were last read (``time.monotonic()``)."""

    def _live(self, tasks: list[Task]) -> list[Task]:
        get = self._registry.get
        return [get(t.id) or t for t in tasks]

    async def lookup(self, id_or_prefix: str) -> Task:
        task = await self._pg.by_id(id_or_prefix)
        if task is not None:
            return task
        if len(id_or_prefix) < MIN_ID_PREFIX:
            raise NotFound(f"no task with id {id_or_prefix!r}")
        found = await self._pg.by_prefix(id_or_prefix, AMBIGUOUS_CANDIDATES + 1)
        return pick_by_prefix(id_or_prefix, found)

    async def page(
        self,
        *,
        statuses: frozenset[TaskStatus] | None,
        type_: str | None,
        q: str | None,
        limit: int,
        offset: int,
        waiting: str | None = None,
        parent: str | None = None,
    ) -> tuple[list[Task], int]:
        if waiting not in (None, *WAITING):
            waiting_filter(waiting)  # raises InvalidRequest naming the values
        found, total = await self._pg.page(
            statuses=statuses,
            type_=type_,
            q=q,
            limit=limit,
            offset=offset,
            waiting=waiting,
            parent=parent,
        )
        return self._live(found), total

    async def snapshot(self, limit: int) -> list[Task]:
        return self._live(await self._pg.snapshot(limit))

    def counts(self) -> TaskCounts:
        self.read_at = time.monotonic()
        c = self._pg.counts
        return TaskCounts(
            total=c.total,
            pending=c.pending,
            scheduled=c.scheduled,
            blocked=c.blocked,
            running=c.running,
            completed=c.completed,
            failed=c.failed,
            cancelled=c.cancelled,
        )


class PostgresStore:
    """Many instances, one PostgreSQL (see ``docs/cluster.md``)."""

    def __init__(self, cfg: Config, *, version: str) -> None:
        st = cfg.store
        self.cfg = cfg
        self.url = check_url(st.url)
        self.schema = st.schema
        self._changes = channels(self.schema)[1]
        self.instance_id = secrets.randbits(63)
        self.name = st.instance_name or default_name()
        self.version = version
        self.pool = make_pool(
            self.url, instance_id=self.instance_id, name=self.name, max_size=POOL_SIZE
        )
        self.journal = PgJournal(
            self.pool,
            self.schema,
            self.instance_id,
            on_lost=self._lost,
            on_open=self._open,
            on_close=self._close,
        )
        self._engine: Engine | None = None
        self._pg = PgIndex(self.pool, self.schema)
        self._bulk = PgBulk(self.pool, self.schema)
        self.schedules = PgSchedules(self.pool, self.schema)
        """Schedules made through the API, and the cluster's record of each run."""
        self.keys = PgKeys(self.pool, self.schema)
        self.type_settings = PgTypeSettings(self.pool, self.schema)
        """The types' run-time settings, shared by the cluster."""
        self.backlog: SharedBacklog
        self.index: SharedIndex
        self.cluster: Cluster
        self.listener: Listener

    # ------------------------------------------------------------------ wiring
    def bind(self, engine: Engine) -> tuple[SharedBacklog, SharedIndex]:
        self._engine = engine
        cfg = self.cfg
        pool = engine.pool
        self.backlog = SharedBacklog(
            self.pool,
            self.schema,
            self.instance_id,
            self.name,
            cfg.task.queue_capacity,
            idle_workers=lambda: 0 if pool.paused else len(pool.idle),
            pool_size=lambda: len(pool.workers),
            claimed=self._claimed,
            waiting=self._pg.runnable,
            release=self._released,
            admitted=self._admitted,
        )
        self.index = SharedIndex(self._pg, engine.registry)
        self.cluster = Cluster(
            self.pool,
            self.schema,
            instance_id=self.instance_id,
            name=self.name,
            version=self.version,
            lease_s=cfg.store.lease,
            heartbeat_s=cfg.store.heartbeat,
            requeue=cfg.store.recover_running == "requeue",
            figures=self._figures,
            cancel_local=lambda task_id: engine.interrupt_held(task_id, "cancelled"),
            lease_lost=self._lease_lost,
        )
        self.listener = Listener(
            self.url,
            self.pool,
            self.schema,
            self.instance_id,
            engine.bus,
            name=self.name,
            on_wake=self.backlog.notify,
            on_cancel=lambda task_id: engine.interrupt_held(task_id, "cancelled"),
            on_reconnect=self.backlog.reconnected,
            on_types=lambda: engine.type_settings.poke(),
        )
        return self.backlog, self.index

    async def _open(self) -> None:
        """Connect, set up the schema and join, or raise ``StoreError`` (one line)."""
        conn = await connect(self.url)
        try:
            await ensure_schema(conn, self.url, self.schema)
            await conn.execute(f"SET search_path TO {self.schema}")
            try:
                await self.cluster.join(conn)
            except psycopg.Error as exc:
                raise StoreError(
                    f"store {redact(self.url)}: cannot join: {describe(exc)}"
                ) from None
        finally:
            await conn.close()
        await self.pool.open(wait=True, timeout=10)
        await self._pg.refresh_counts()
        _logger.info(
            "joined the cluster at %s (schema %s) as %s", redact(self.url), self.schema, self.name
        )

    async def _close(self) -> None:
        await self.pool.close(timeout=5)

    # ------------------------------------------------------------------ engine hooks
    def _figures(self) -> InstanceFigures:
        assert self._engine is not None
        pool = self._engine.pool
        return InstanceFigures(
            workers=len(pool.workers),
            busy=pool.busy,
            min_workers=pool.min_workers,
            max_workers=pool.max_workers,
            paused=pool.paused,
            done=pool.done,
            failed=pool.failed,
        )

    def _admitted(self, n: int) -> None:
        self._pg.admitted += n
        self.index.read_at = time.monotonic()  # keep the counts fresh while submitting

    def _claimed(self, tasks: list[Task]) -> None:
        assert self._engine is not None
        self._engine.registry.add_pending(tasks)
        self._engine.pool.wake(len(tasks))

    def _released(self, task: Task) -> None:
        """A task handed back (a retry waiting out its backoff, a lost lease): it is the
        cluster's again, no longer this instance's."""
        assert self._engine is not None
        self._engine.registry.discard(task)

    def _lost(self, tasks: list[Task]) -> None:
        """Writes of these tasks were refused: another instance holds their lease now."""
        assert self._engine is not None
        _logger.warning(
            "%d task(s) were re-queued by another instance while this one ran them"
            " (lease lost): stopping them here",
            len(tasks),
        )
        for task in tasks:
            self._engine.interrupt_held(task.id, "lease")
            if task.status is TaskStatus.PENDING or task.status.final:
                self._engine.registry.discard(task)

    def _lease_lost(self) -> None:
        """This instance could not renew its lease in time: stop what it runs (another
        instance re-queues it) and give back what it claimed."""
        assert self._engine is not None
        engine = self._engine
        held = [t for t in engine.registry.active()]
        if held:
            _logger.warning(
                "lease lost: stopping %d task(s); the cluster runs them again", len(held)
            )
        for task in held:
            if task.status is TaskStatus.RUNNING:
                engine.interrupt_held(task.id, "lease")
            else:
                self.backlog.forget(task)
                engine.registry.discard(task)

    # ------------------------------------------------------------------ background
    async def run(self) -> None:
        # (The claimer is the backlog's own job: the engine runs it.)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.cluster.run, name="pg heartbeat")
            tg.start_soon(self.listener.run, name="pg listener")
            tg.start_soon(self._counts, name="pg counts")

    async def _counts(self) -> None:
        """Keep the cluster's counts at most :data:`COUNTS_TTL_S` old while they are read
        (stats, admission); idle, nobody asks, nothing is queried."""
        while True:
            await anyio.sleep(COUNTS_TTL_S)
            if time.monotonic() - self.index.read_at > COUNTS_READERS_S:
                continue
            try:
                await self._pg.refresh_counts()
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                _logger.debug("store: cannot read counts: %s", describe(exc))

    # ------------------------------------------------------------------ operations
    async def results(self, ids: list[str]) -> dict[str, Any]:
        return await self._pg.results(ids)

    async def run_now(self, task: Task) -> Task:
        await self._pg.run_now(task.id)
        return await self._pg.by_id(task.id) or task

    async def cancel(self, task: Task, wait_s: float) -> Task:
        found = await self.cluster.cancel(task.id, wait_s)
        if found is None:
            raise NotFound(f"no task with id {task.id!r}")
        return found

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """The writes made meanwhile by the calling task are quiet (see ``quiet.py``)."""
        token = QUIET.set(True)
        try:
            yield
        finally:
            QUIET.reset(token)

    async def bulk_done(self, event: BulkEvent) -> None:
        """One notification for the whole bulk action: the other instances publish it on
        their bus as the same :class:`BulkEvent` (their followers take a fresh snapshot).
        The counts are read again first: this instance's followers' snapshot has them
        right at once (a bulk cancel may have moved 100,000 tasks). Not sent, a warning is
        logged: the action itself was done."""
        payload = f"{self.instance_id} {BULK_TAG}" + msgspec.json.encode(event).decode()
        try:
            await self._pg.refresh_counts()
            async with self.pool.connection() as conn:
                await conn.execute("SELECT pg_notify(%s, %s)", (self._changes, payload))
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            _logger.warning("store: cannot announce a bulk %s: %s", event.action, describe(exc))

    async def cancel_pending(self, ids: list[str]) -> PendingCancel:
        """Cancel the pending, unclaimed ones of these tasks in one statement (a chunk of
        a bulk cancel, see ``bulkops.py``)."""
        return await self._bulk.cancel_pending(ids)

    async def delete_final(self, ids: list[str]) -> int:
        """Delete these tasks if they are final (a bulk delete); returns how many went."""
        return await self._bulk.delete_final(ids)

    async def retention(self) -> int:
        t = self.cfg.task
        try:
            return await self.cluster.retention(
                t.cleanup_completed_tasks_after, t.keep_failed_for, t.max_tracked_tasks
            )
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            _logger.warning("store: retention skipped: %s", describe(exc))
            return 0

    async def stop(self) -> None:
        self.cluster.stopping = True
        await self.backlog.release()
        await self.cluster.leave()

    def degraded(self) -> str | None:
        if self.journal.degraded is not None:
            return f"PostgreSQL: {self.journal.degraded}"
        if not self.listener.connected:
            return "PostgreSQL: not listening for notifications (reconnecting)"
        return None

    async def instances(self) -> list[Instance]:
        return await self.cluster.instances()
