"""The in-process event bus (SPEC §7).

Every subscriber has its own bounded buffer. Publishing never waits: it appends to each
buffer and, at most, sets one event to wake a sleeping subscriber. Progress events are
coalesced per task (the event refers to the live task, so the latest value wins). A
subscriber whose buffer overflows loses its buffer, receives :data:`RESYNC` next, and is
expected to take a fresh snapshot from the engine; every dropped event is counted.

Events refer to the engine's live :class:`~.models.Task` records: ``task`` in an event is
the task as it is when the subscriber reads it, ``kind`` is what happened.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import anyio
import msgspec

from .models import EventKind, Task


class TaskEvent(msgspec.Struct, frozen=True, gc=False):
    kind: EventKind
    task: Task


class PoolEvent(msgspec.Struct, frozen=True, gc=False):
    """A change to the pool: scaling, resize, pause/resume. ``reason`` is for people."""

    action: str
    reason: str
    current: int
    min_workers: int
    max_workers: int
    paused: bool


class LogEvent(msgspec.Struct, frozen=True, gc=False):
    """An engine log line worth showing live (the dashboard's log panel, the web page)."""

    level: str
    message: str
    at: float


class BulkEvent(msgspec.Struct, frozen=True, gc=False):
    """A bulk action changed many tasks at once (:mod:`.bulk`): their own events were not
    published, so a subscriber takes a fresh snapshot on this one."""

    action: str
    matched: int
    changed: int
    skipped: dict[str, int]


class _Resync(enum.Enum):
    RESYNC = "resync"


RESYNC = _Resync.RESYNC
"""Delivered to a subscriber that fell behind: its buffer was dropped; take a snapshot."""

Event = TaskEvent | PoolEvent | LogEvent | BulkEvent
Delivery = Event | _Resync

DEFAULT_BUFFER = 10_000
_PROGRESS = EventKind.PROGRESS


class Subscription:
    """One subscriber's bounded buffer. Use as an async context manager and iterate batches."""

    def __init__(self, bus: EventBus, maxsize: int, name: str) -> None:
        self._bus = bus
        self.maxsize = maxsize
        self.name = name
        self._buf: deque[Event] = deque()
        self._room = maxsize
        """Events the buffer takes before it overflows (0 while overflowed)."""
        self._progress_queued: set[str] = set()
        self._overflowed = False
        self._waiter: anyio.Event | None = None
        self.closed = False
        self.delivered = 0
        self.dropped = 0
        """Events this subscriber never saw: coalesced progress and overflowed buffers."""
        self.resyncs = 0

    def __len__(self) -> int:
        return len(self._buf)

    # -- publisher side (hot path) -------------------------------------------------------
    def _push(self, event: Event) -> None:
        if self._room:
            self._room -= 1
            self._buf.append(event)
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                waiter.set()
        else:
            self._overflow()

    def _push_progress(self, event: TaskEvent) -> None:
        if self._room:  # (an overflowed buffer has no room: the event is dropped below)
            tid = event.task.id
            if tid in self._progress_queued:
                self.dropped += 1
                return
            self._progress_queued.add(tid)
        self._push(event)

    def _overflow(self) -> None:
        """The buffer is full: drop it (and this event), and owe the subscriber a resync."""
        if self._overflowed:
            self.dropped += 1
            return
        self.dropped += len(self._buf) + 1
        self._buf.clear()
        self._progress_queued.clear()
        self._overflowed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    # -- subscriber side -------------------------------------------------------------------
    def get_nowait(self) -> list[Delivery]:
        """Everything buffered now (possibly nothing), or ``[RESYNC]`` after an overflow."""
        if self._overflowed:
            self._overflowed = False
            self._room = self.maxsize
            self.resyncs += 1
            return [RESYNC]
        if not self._buf:
            return []
        batch: list[Delivery] = list(self._buf)
        self._buf.clear()
        self._room = self.maxsize
        self._progress_queued.clear()
        self.delivered += len(batch)
        return batch

    async def get_batch(self) -> list[Delivery]:
        """Wait for at least one delivery and return all that are buffered."""
        while True:
            batch = self.get_nowait()
            if batch:
                return batch
            if self.closed:
                raise anyio.EndOfStream
            waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def __aiter__(self) -> AsyncIterator[list[Delivery]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[Delivery]]:
        while True:
            try:
                yield await self.get_batch()
            except anyio.EndOfStream:
                return

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            if self._waiter is not None:
                self._waiter.set()
                self._waiter = None

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self.published = 0
        self.dropped_closed = 0
        self.resyncs_closed = 0

    def subscribe(self, *, maxsize: int = DEFAULT_BUFFER, name: str = "subscriber") -> Subscription:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        sub = Subscription(self, maxsize, name)
        self._subs = (*self._subs, sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)
        self.dropped_closed += sub.dropped
        self.resyncs_closed += sub.resyncs

    @property
    def subscribers(self) -> tuple[Subscription, ...]:
        return self._subs

    @property
    def dropped(self) -> int:
        """Events dropped across all subscribers, past and present."""
        return self.dropped_closed + sum(s.dropped for s in self._subs)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; progress is coalesced per task."""
        self.published += 1
        if type(event) is TaskEvent and event.kind is _PROGRESS:
            for sub in self._subs:
                sub._push_progress(event)
        else:
            for sub in self._subs:
                sub._push(event)

    def publish_task(self, kind: EventKind, task: Task) -> None:
        """:meth:`publish` of ``TaskEvent(kind, task)`` for a kind that is not progress
        (nothing to coalesce), the event made only if someone subscribes (the engine's
        hot path: three a task)."""
        self.published += 1
        subs = self._subs
        if subs:
            event = TaskEvent(kind, task)
            for sub in subs:
                sub._push(event)

    def resync_all(self) -> None:
        """Every subscriber takes a fresh snapshot next (events were missed: a cluster
        store's feed reconnected)."""
        for sub in self._subs:
            sub._overflow()

    def close(self) -> None:
        for sub in self._subs:
            sub.close()

    def stats(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "dropped": self.dropped,
            "subscribers": len(self._subs),
            "resyncs": self.resyncs_closed + sum(s.resyncs for s in self._subs),
        }
