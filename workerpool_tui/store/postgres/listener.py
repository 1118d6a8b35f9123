"""The instance's ear on the cluster: one connection that LISTENs, and the change feed.

Always listened to: ``<schema>_wake`` (tasks became runnable: the claimer looks),
``<schema>_cancel`` (``owner:task`` — the owner cancels its task) and ``<schema>_types``
(a type's run-time settings changed: read them again). ``<schema>_changes``
(``origin id,id,...`` per statement) only while somebody on this instance follows events
(a WebSocket client, a dashboard): then changed tasks of other instances are read back in
one query every :data:`FEED_GATHER_S` and published on the engine's bus as task events, so
that every instance shows the whole cluster's changes, within a second. Without followers
the feed costs nothing. Another instance's bulk action comes as one summary (``origin
!bulk {json}``, see ``quiet.py``), published as the same :class:`BulkEvent`.

If the connection breaks it is made again with backoff; what may have been missed is
assumed: the claimer looks for work, and followers get a resync (a fresh snapshot).
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...core.bus import BulkEvent, EventBus, TaskEvent
from ...core.models import EventKind, Task, TaskStatus
from . import rows
from .connect import CONNECT_TIMEOUT_S, application_name, describe
from .quiet import BULK_TAG
from .schema import channels, types_channel

FEED_GATHER_S = 0.1
POLL_S = 0.25
"""How often the listening loop looks up from the socket (to follow or stop following)."""
SEEN_MAX = 20_000
"""Statuses remembered per task id, to tell a start from progress (oldest forgotten)."""
_logger = logging.getLogger("workerpool_tui.store")
_FINAL_KIND = {
    TaskStatus.COMPLETED: EventKind.COMPLETED,
    TaskStatus.FAILED: EventKind.FAILED,
    TaskStatus.CANCELLED: EventKind.CANCELLED,
}


class Listener:
    def __init__(
        self,
        url: str,
        pool: AsyncConnectionPool,
        schema: str,
        instance_id: int,
        bus: EventBus,
        *,
        name: str,
        on_wake: Callable[[str], None],
        on_cancel: Callable[[str], object],
        on_reconnect: Callable[[], None],
        on_types: Callable[[], None] = lambda: None,
    ) -> None:
        self._url = url
        self._app = application_name(name)
        self._pool = pool
        self._wake, self._changes, self._cancel = channels(schema)
        self._types = types_channel(schema)
        self._on_types = on_types
        self._get_many = f"SELECT {rows.COLUMNS} FROM {schema}.tasks WHERE id = ANY(%s::text[])"
        self._set_following = f"UPDATE {schema}.instances SET following = %s WHERE id = %s"
        self._me = str(instance_id)
        self._bus = bus
        self._on_wake = on_wake
        self._on_cancel = on_cancel
        self._on_reconnect = on_reconnect
        self._following: bool | None = False
        """Whether this instance follows the changes; ``None`` right after (re)connecting,
        when its row says what the previous connection left there."""
        self._changed: set[str] = set()
        self._changed_event = anyio.Event()
        self._seen: OrderedDict[str, TaskStatus] = OrderedDict()
        self.connected = False
        self.published = 0

    # ------------------------------------------------------------------ listening
    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._feed, name="pg change feed")
            backoff = 0.1
            first = True
            while True:
                try:
                    conn = await psycopg.AsyncConnection.connect(
                        self._url,
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT_S,
                        application_name=self._app,
                    )
                except psycopg.Error as exc:
                    _logger.warning("store: cannot listen: %s", describe(exc))
                    await anyio.sleep(backoff * (0.5 + random.random()))
                    backoff = min(5.0, backoff * 2)
                    continue
                backoff = 0.1
                try:
                    async with conn:
                        await self._listen(conn, first)
                except psycopg.Error as exc:
                    _logger.warning("store: the listening connection broke: %s", describe(exc))
                finally:
                    self.connected = False
                    self._following = None
                first = False

    async def _listen(self, conn: psycopg.AsyncConnection[Any], first: bool) -> None:
        for channel in (self._wake, self._cancel, self._types):
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.connected = True
        self._on_types()  # changes announced before the LISTEN were not heard
        if not first:
            self._on_reconnect()  # something may have been missed
            self._bus.resync_all()
        while True:
            want = bool(self._bus.subscribers)
            if want != self._following:
                verb = "LISTEN" if want else "UNLISTEN"
                await conn.execute(sql.SQL(verb + " {}").format(sql.Identifier(self._changes)))
                # Then say so: the triggers send changes only while somebody follows.
                await conn.execute(self._set_following, (want, int(self._me)))
                self._following = want
                if want:
                    # Changes made before the LISTEN took effect were not heard: the
                    # followers take a fresh snapshot, which has them.
                    self._seen.clear()
                    self._bus.resync_all()
            async for note in conn.notifies(timeout=POLL_S):
                channel = note.channel
                if channel == self._wake:
                    self._on_wake(note.payload)
                elif channel == self._cancel:
                    owner, _, task_id = note.payload.partition(":")
                    if owner == self._me:
                        self._on_cancel(task_id)
                elif channel == self._types:
                    self._on_types()
                elif channel == self._changes and self._following:
                    origin, _, ids = note.payload.partition(" ")
                    if origin == self._me or not ids:
                        continue
                    if ids.startswith(BULK_TAG):
                        self._bulk(ids[len(BULK_TAG) :])
                    else:
                        self._changed.update(ids.split(","))
                        self._changed_event.set()

    def _bulk(self, summary: str) -> None:
        """Another instance's bulk action: its tasks were not announced one by one."""
        try:
            event = msgspec.json.decode(summary, type=BulkEvent)
        except msgspec.DecodeError as exc:
            _logger.warning("store: unreadable bulk summary: %s", exc)
            event = None
        if event is None:
            self._bus.resync_all()
        else:
            self._bus.publish(event)

    # ------------------------------------------------------------------ the feed
    async def _feed(self) -> None:
        """Read back what other instances changed and publish it on the bus."""
        while True:
            await self._changed_event.wait()
            await anyio.sleep(FEED_GATHER_S)  # gather a batch
            self._changed_event = anyio.Event()
            ids, self._changed = self._changed, set()
            if not ids or not self._bus.subscribers:
                continue
            try:
                async with self._pool.connection() as conn:
                    cur = await conn.execute(self._get_many, (list(ids),))
                    found = [rows.task(r) for r in await cur.fetchall()]
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                _logger.warning("store: cannot read changed tasks: %s", describe(exc))
                self._bus.resync_all()
                continue
            found.sort(key=lambda t: t.seq)
            for task in found:
                self._bus.publish(TaskEvent(self._kind(task), task))
            self.published += len(found)

    def _kind(self, task: Task) -> EventKind:
        seen = self._seen
        before = seen.pop(task.id, None)
        seen[task.id] = task.status
        if len(seen) > SEEN_MAX:
            seen.popitem(last=False)
        status = task.status
        if status.final:
            return _FINAL_KIND[status]
        if status is TaskStatus.RUNNING:
            return EventKind.PROGRESS if before is TaskStatus.RUNNING else EventKind.STARTED
        # pending: new, or back for a retry
        return EventKind.RETRYING if before is TaskStatus.RUNNING else EventKind.CREATED
