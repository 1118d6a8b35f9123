"""Per-type gates: ``concurrency``, ``rate_limit`` and ``paused`` of ``[task.types.NAME]``.

:class:`TypeGates` is the backlog the workers see: it wraps the store's backlog (local or
shared) and, when a worker asks for the next task, gives it the first one whose type may
start now. A task whose type is at its cap, spacing its starts or paused is *held* apart,
per type, in priority order, and the worker takes the next one: a capped or slow type
never blocks the queue behind it (a head-of-line wait would starve every other type).
A held task is released, highest priority first, when its type may start again: a slot
frees (a task of the type ends), the spacing has passed (a timer wakes a worker), or a
limit is raised or the type resumed (``PATCH /api/v1/types/{name}``).

Held tasks stay ``pending`` and count in the queue's depth. With no type limited, a pop
is one check away from the store's own. The limits are this process's: in cluster mode
each instance applies them to the tasks it runs (``concurrency = 4`` and two instances:
up to 8 at once in the cluster), and an instance holds the capped tasks it claimed.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import anyio

from ..config_types import TypeSettings, parse_rate
from .backlog import Backlog
from .errors import InvalidRequest
from .models import Task, TaskStatus

_PENDING = TaskStatus.PENDING


class SharedSlots:
    """A cap several types share: the worker processes of the process types."""

    __slots__ = ("cap", "running")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.running = 0


class TypeLimit:
    """One type's limits (from its config table, changed at run time) and its gate."""

    __slots__ = (
        "concurrency",
        "group",
        "held",
        "held_count",
        "interval_s",
        "name",
        "next_start",
        "paused",
        "rate_limit",
        "running",
    )

    def __init__(self, name: str, settings: TypeSettings, running: int = 0) -> None:
        self.name = name
        self.concurrency = settings.concurrency
        """At most this many running here at once; 0: no cap."""
        self.rate_limit = settings.rate_limit
        self.interval_s = parse_rate(settings.rate_limit)
        """Seconds between two starts; 0: not spaced."""
        self.paused = settings.paused
        self.running = running
        """Tasks of the type running here (counted from when this gate exists)."""
        self.next_start = 0.0
        """``time.monotonic()`` before which no task of the type may start (rate limit)."""
        self.held: list[tuple[int, int, int, Task]] = []
        """Held tasks, a heap of ``(-priority, seq, n, task)``; entries of tasks that left
        (cancelled) are skipped when they surface."""
        self.held_count = 0
        self.group: SharedSlots | None = None

    def full(self) -> bool:
        group = self.group
        return 0 < self.concurrency <= self.running or (
            group is not None and group.running >= group.cap
        )

    def blocked(self, now: float) -> bool:
        return self.paused or self.full() or now < self.next_start

    def rate_holding(self, now: float) -> bool:
        """Tasks are held only because the rate limit spaces their starts."""
        return self.held_count > 0 and not self.paused and not self.full() and now < self.next_start

    def start(self, now: float) -> None:
        self.running += 1
        if self.group is not None:
            self.group.running += 1
        if self.interval_s:
            self.next_start = now + self.interval_s

    def set_rate(self, text: str) -> None:
        interval = parse_rate(text)
        self.rate_limit = text
        if interval < self.interval_s:  # a faster rate applies at once
            self.next_start = min(self.next_start, time.monotonic() + interval)
        self.interval_s = interval


class TypeGates:
    """The backlog with per-type gates in front of it (see the module docstring)."""

    def __init__(
        self,
        inner: Backlog,
        settings: Mapping[str, TypeSettings],
        *,
        wake: Callable[[int], None],
        owned: Callable[[Task], bool],
        running_of: Callable[[str], int],
        changed: Callable[[Task], None],
    ) -> None:
        self.inner = inner
        self.capacity = inner.capacity
        self.shared = inner.shared
        self._inner_pop = inner.pop
        self._wake = wake
        self._owned = owned
        """Whether this instance still holds the task (a lost lease takes claimed ones)."""
        self._running_of = running_of
        self._changed = changed
        self.limits: dict[str, TypeLimit] = {}
        """A gate per type that has (or had) a limit; never removed, so that its running
        count stays right."""
        self._held_ids: set[str] = set()
        self._order = itertools.count()
        self._timer_wake: anyio.Event | None = None
        for name, ts in settings.items():
            if ts.concurrency or ts.rate_limit or ts.paused:
                self.limits[name] = TypeLimit(name, ts)

    # ------------------------------------------------------------------ Backlog
    def __len__(self) -> int:
        return len(self.inner) + len(self._held_ids)

    # No __getattr__ forwarding to the inner backlog: on a class that has one, every
    # attribute read goes through a slow hook and none is specialised (hot path, #16).
    @property
    def queue(self) -> Any:
        """The local backlog's queue (:class:`~.backlog.LocalBacklog`; tests read it)."""
        return getattr(self.inner, "queue")  # noqa: B009 - not every backlog has one

    @property
    def deferred(self) -> int:
        """The local backlog's retries waiting for their time."""
        return int(getattr(self.inner, "deferred"))  # noqa: B009

    def has_next(self) -> bool:
        # A held task may be the next one too: a worker must still yield between them.
        return bool(self._held_ids) or self.inner.has_next()

    @property
    def free(self) -> int:
        return max(0, self.inner.free - len(self._held_ids))

    @property
    def held_total(self) -> int:
        return len(self._held_ids)

    def push_many(self, tasks: Sequence[Task], *, force: bool = False) -> None:
        self.inner.push_many(tasks, force=force)

    def idle(self) -> None:
        self.inner.idle()

    def defer(self, task: Task, delay_s: float) -> None:
        self.inner.defer(task, delay_s)

    def pop(self) -> Task | None:
        """The next task a worker may start now, or ``None``; hot path."""
        if not self.limits:
            return self._inner_pop()
        now = time.monotonic()
        if self._held_ids:
            task = self._pop_held(now)
            if task is not None:
                return task
        pop, limits = self._inner_pop, self.limits
        while True:
            task = pop()
            if task is None:
                return None
            limit = limits.get(task.type)
            if limit is None:
                return task
            if not limit.blocked(now):
                limit.start(now)
                return task
            self._hold(limit, task, now)

    def discard(self, task: Task) -> None:
        if task.id in self._held_ids:
            self._held_ids.discard(task.id)
            self.limits[task.type].held_count -= 1
        else:
            self.inner.discard(task)

    async def run(self) -> None:
        """The store backlog's own job, and the timer that releases rate-held tasks."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.inner.run)
                await self._timer()
        finally:
            if self.shared:
                # Claimed and held here: back to the cluster for any instance to run.
                for task in self._drain_held():
                    self.inner.defer(task, 0.0)
                    self._changed(task)  # written pending, with no owner

    # ------------------------------------------------------------------ the gates
    def ended(self, task: Task) -> None:
        """A task left its worker (finished, retrying, handed back): free its slot."""
        limit = self.limits.get(task.type)
        if limit is None:
            return
        if limit.running > 0:
            limit.running -= 1
        group = limit.group
        if group is not None:
            group.running = max(0, group.running - 1)
            now = time.monotonic()
            if any(o.held_count and not o.blocked(now) for o in self.limits.values()):
                self._wake(1)
        elif limit.held_count and not limit.blocked(time.monotonic()):
            self._wake(1)

    def limit(self, name: str) -> TypeLimit:
        """The gate of ``name``, made (with the running count as it is) if it had none."""
        limit = self.limits.get(name)
        if limit is None:
            limit = self.limits[name] = TypeLimit(
                name, TypeSettings(), running=self._running_of(name)
            )
        return limit

    def changed(self, limit: TypeLimit) -> None:
        """``limit``'s settings changed at run time: release what it may now start."""
        now = time.monotonic()
        if limit.held_count and not limit.blocked(now):
            free = limit.concurrency - limit.running if limit.concurrency else limit.held_count
            self._wake(1 if limit.interval_s else max(1, min(free, limit.held_count)))
        if self._timer_wake is not None:
            self._timer_wake.set()

    def _hold(self, limit: TypeLimit, task: Task, now: float) -> None:
        heapq.heappush(limit.held, (-task.priority, task.seq, next(self._order), task))
        limit.held_count += 1
        self._held_ids.add(task.id)
        if limit.rate_holding(now) and self._timer_wake is not None:
            self._timer_wake.set()

    def _pop_held(self, now: float) -> Task | None:
        """The highest-priority held task whose type may start now."""
        best: TypeLimit | None = None
        best_key: tuple[int, int, int] | None = None
        for limit in self.limits.values():
            if not limit.held_count or limit.blocked(now):
                continue
            head = self._head(limit)
            if head is None:
                continue
            key = head[:3]
            if best_key is None or key < best_key:
                best, best_key = limit, key
        if best is None:
            return None
        task = heapq.heappop(best.held)[3]
        best.held_count -= 1
        self._held_ids.discard(task.id)
        best.start(now)
        return task

    def _head(self, limit: TypeLimit) -> tuple[int, int, int, Task] | None:
        held = limit.held
        while held:
            entry = held[0]
            task = entry[3]
            if task.id in self._held_ids and task.status is _PENDING and self._owned(task):
                return entry
            heapq.heappop(held)
            if task.id in self._held_ids:  # no longer this instance's (a lost lease)
                self._held_ids.discard(task.id)
                limit.held_count -= 1
        return None

    def _drain_held(self) -> Iterator[Task]:
        for limit in self.limits.values():
            while limit.held:
                task = heapq.heappop(limit.held)[3]
                if task.id in self._held_ids:
                    self._held_ids.discard(task.id)
                    limit.held_count -= 1
                    if task.status is _PENDING:
                        yield task

    async def _timer(self) -> None:
        """Wake a worker when a rate-held type may start again."""
        while True:
            now = time.monotonic()
            nearest = math.inf
            for limit in self.limits.values():
                if not limit.held_count or limit.paused or limit.full():
                    continue
                if now >= limit.next_start:
                    self._wake(1)
                else:
                    nearest = min(nearest, limit.next_start)
            self._timer_wake = anyio.Event()
            with anyio.move_on_after(min(nearest - now, 1.0) if nearest < math.inf else 1.0):
                await self._timer_wake.wait()

    def share_slots(self, names: list[str], cap: int) -> None:
        """``names`` together run at most ``cap`` tasks at once (one per worker process),
        so a worker never waits for a process while other work is queued."""
        group = SharedSlots(cap)
        for name in names:
            self.limit(name).group = group

    # ------------------------------------------------------------------ run-time changes
    def update(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        paused: bool | None = None,
    ) -> TypeLimit:
        """Change a type's limits here (``PATCH /api/v1/types/{name}``): all or nothing,
        ``InvalidRequest`` naming the field. Not written here: ``core/type_settings.py``
        keeps the change (and calls this)."""
        if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 0):
            raise InvalidRequest(f"concurrency: must be 0 (no cap) or more, got {concurrency}")
        if rate_limit is not None:
            try:
                parse_rate(rate_limit)
            except ValueError as exc:
                raise InvalidRequest(f"rate_limit: {exc}") from None
        limit = self.limit(name)
        if concurrency is not None:
            limit.concurrency = concurrency
        if rate_limit is not None:
            limit.set_rate(rate_limit)
        if paused is not None:
            limit.paused = paused
        self.changed(limit)
        return limit
