"""One bus subscription for every WebSocket client (held only while any is connected).

Each event is encoded to JSON once and framed once; the frames of one bus batch are joined
and the same bytes are pushed to every client's bounded buffer (``push`` never waits).
``stats`` goes out about once a second. When the shared subscription itself falls behind,
every client gets ``resync`` and one fresh snapshot, encoded once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import anyio
import msgspec
from anyio.abc import TaskStatus

from ..core.bus import RESYNC, BulkEvent, PoolEvent, Subscription, TaskEvent
from ..core.engine import Engine
from ..core.models import Task, task_view
from ..core.supervise import supervised
from .limits import Limits
from .schemas import (
    BulkMessage,
    PoolMessage,
    ResyncMessage,
    SnapshotMessage,
    StatsMessage,
    TaskMessage,
)
from .websocket import WebSocketClient, frame_text

log = logging.getLogger("workerpool_tui.server")

BUS_BUFFER = 50_000
"""The shared subscription's buffer; past it, all clients resync."""

_encode = msgspec.json.Encoder().encode
_RESYNC_FRAME = frame_text(_encode(ResyncMessage()))


class Broadcaster:
    def __init__(self, engine: Engine, limits: Limits) -> None:
        self.engine = engine
        self.limits = limits
        self.clients: dict[WebSocketClient, None] = {}
        self.frames_sent = 0
        self._snapshot_cache: tuple[int, bytes] | None = None
        self._empty = anyio.Event()
        self._empty.set()
        self._sub: Subscription | None = None
        self._wanted = anyio.Event()
        self._refresh = anyio.Event()
        """Set when clients were given a snapshot that may be stale (a shared store's)."""

    # ------------------------------------------------------------------ frames
    def _frame(self, tasks: list[Task]) -> bytes:
        message = SnapshotMessage(
            stats=self.engine.stats(), tasks=[task_view(t, with_logs=False) for t in tasks]
        )
        frame = frame_text(_encode(message))
        self._snapshot_cache = (self.engine.bus.published, frame)
        return frame

    def snapshot_frame(self) -> bytes:
        """A ``snapshot`` message framed, without waiting; reused by everyone asking in the
        same bus round. With a shared store (the cluster: a snapshot is a query) this is
        the latest one taken, and a fresh one follows (:meth:`fresh_snapshot_frame`)."""
        cached = self._snapshot_cache
        if cached is not None and cached[0] == self.engine.bus.published:
            return cached[1]
        tasks = self.engine.snapshot_now()
        if tasks is None:
            self._refresh.set()  # the snapshotter sends a fresh one to every client soon
            return cached[1] if cached is not None else self._frame([])
        return self._frame(tasks)

    async def fresh_snapshot_frame(self) -> bytes:
        """A ``snapshot`` message framed, taken now (waits for the query of a shared store)."""
        cached = self._snapshot_cache
        if cached is not None and cached[0] == self.engine.bus.published:
            return cached[1]
        tasks = self.engine.snapshot_now()
        if tasks is None:
            tasks = await self.engine.snapshot()
        return self._frame(tasks)

    def resync_frames(self) -> bytes:
        return _RESYNC_FRAME + self.snapshot_frame()

    def _fan_out(self, data: bytes) -> None:
        for client in list(self.clients):
            client.push(data)
        self.frames_sent += len(self.clients)

    # ------------------------------------------------------------------ clients
    @contextmanager
    def register(self, client: WebSocketClient) -> Iterator[None]:
        """Add a client. The first one subscribes to the bus (synchronously, so a snapshot
        taken right after misses no event); the last one to leave unsubscribes, so that
        without WebSocket clients the engine publishes to nobody here."""
        if not self.clients:
            self._empty = anyio.Event()
            if self._sub is None and not self.engine.closed:
                self._sub = self.engine.bus.subscribe(maxsize=BUS_BUFFER, name="websocket")
                self._wanted.set()
        self.clients[client] = None
        try:
            yield
        finally:
            self.clients.pop(client, None)
            if not self.clients:
                self._empty.set()
                if self._sub is not None:
                    self._sub.close()  # the forwarding loop sees EndOfStream and waits again
                    self._sub = None

    async def wait_empty(self) -> None:
        """Return once no client is connected (callers bound this with a deadline)."""
        await self._empty.wait()

    def close_all(self, code: int, reason: str) -> None:
        for client in list(self.clients):
            client.close(code, reason)

    # ------------------------------------------------------------------ running
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Forward bus events to the clients; each job supervised (a failure is logged,
        the job restarts, and the clients resync)."""
        fatal = self.engine.report_fatal
        again = partial(supervised, restart=True, logger=log)
        async with anyio.create_task_group() as tg:
            tg.start_soon(again, "WebSocket stats ticker", self._stats_ticker, fatal)
            tg.start_soon(again, "WebSocket snapshotter", self._snapshotter, fatal)
            tg.start_soon(again, "WebSocket broadcast", self._forwarding, fatal)
            task_status.started()

    async def _forwarding(self) -> None:
        if self.clients:  # a restart after a failure: what they had may be stale
            self._refresh.set()
            if self._sub is None and not self.engine.closed:
                self._sub = self.engine.bus.subscribe(maxsize=BUS_BUFFER, name="websocket")
                self._wanted.set()
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            sub = self._sub
            if sub is None:
                continue
            try:
                await self._forward(sub)
            finally:
                sub.close()
                if self._sub is sub:
                    self._sub = None

    async def _forward(self, sub: Subscription) -> None:
        """Fan the subscription's batches out until it is closed (no clients left, or the
        engine closed its bus)."""
        while True:
            try:
                batch = await sub.get_batch()
            except anyio.EndOfStream:
                return
            frames: list[bytes] = []
            for item in batch:
                if isinstance(item, TaskEvent):
                    message = TaskMessage(item.kind, task_view(item.task, with_logs=False))
                    frames.append(frame_text(_encode(message)))
                elif isinstance(item, PoolEvent):
                    pool = PoolMessage(
                        item.action,
                        item.reason,
                        item.current,
                        item.min_workers,
                        item.max_workers,
                        item.paused,
                    )
                    frames.append(frame_text(_encode(pool)))
                elif isinstance(item, BulkEvent):
                    # Its tasks' own events were not published: a fresh snapshot instead.
                    bulk = BulkMessage(item.action, item.matched, item.changed, item.skipped)
                    frames.append(frame_text(_encode(bulk)))
                    frames.append(await self.fresh_snapshot_frame())
                elif item is RESYNC:
                    log.warning("websocket broadcast fell behind the bus; resyncing clients")
                    frames = [_RESYNC_FRAME + await self.fresh_snapshot_frame()]
            if frames and self.clients:
                self._fan_out(frames[0] if len(frames) == 1 else b"".join(frames))

    async def _snapshotter(self) -> None:
        """A shared store's snapshots are queries: a client resynced from the latest one
        taken gets a fresh one right after (events in between are then covered)."""
        while True:
            await self._refresh.wait()
            self._refresh = anyio.Event()
            if self.clients:
                self._fan_out(_RESYNC_FRAME + await self.fresh_snapshot_frame())

    async def _stats_ticker(self) -> None:
        while True:
            await anyio.sleep(self.limits.stats_interval_s)
            if self.clients:
                self._fan_out(frame_text(_encode(StatsMessage(self.engine.stats()))))
