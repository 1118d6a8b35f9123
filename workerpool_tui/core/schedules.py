"""Recurring schedules at run time (see ``docs/scheduling.md``): the scheduler that fires each
schedule at its due times, and the API's calls on them. The rule itself, its validation and
due-time arithmetic are in :mod:`.schedule_rules`.

Each run is submitted with the unique key ``schedule:NAME:DUE`` (held for a day), so a due
time is submitted once even if two instances or a restart try again; and the last due time
is found again after a restart from those keys (local stores) or from the schedules table
(cluster).

After a restart, runs missed while the process was down fire once at start
(``catch_up = "one"``, the default) or not at all (``"none"``). ``overlap = "skip"`` (the
default) does not submit while the previous run is unfinished.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import msgspec

from .errors import EngineError, InvalidRequest, NotFound, ShuttingDown
from .models import TaskSpec, rfc3339
from .schedule_rules import (
    KEY_HOLD_S,
    KEY_PREFIX,
    check_schedule,
    last_at_or_before,
    next_after,
    run_key,
)

# The engine, the server and the stores import the spec with the scheduler.
from .schedule_rules import ScheduleSpec as ScheduleSpec

if TYPE_CHECKING:
    from .engine import Engine

MAX_SLEEP_S = 30.0
_logger = logging.getLogger("workerpool_tui.schedules")


class Schedule:
    """A schedule and its state."""

    __slots__ = ("last_run", "last_task_id", "next_run", "source", "spec")

    def __init__(self, spec: ScheduleSpec, source: str) -> None:
        self.spec = spec
        self.source = source
        """``config`` (read-only over the API) or ``api``."""
        self.next_run: float | None = None
        self.last_run: float | None = None
        self.last_task_id: str | None = None


class ScheduleView(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule as the API answers it."""

    name: str
    type: str
    cron: str | None
    every: float | None
    timezone: str
    payload: dict[str, Any]
    priority: int
    timeout: float | None
    max_retries: int | None
    paused: bool
    overlap: str
    catch_up: str
    source: str
    next_run: str | None
    last_run: str | None
    last_task_id: str | None
    last_status: str | None


class ScheduleStore(Protocol):
    """Where schedules made through the API are kept, and how a shared store decides which
    instance fires a due time."""

    async def load(self) -> tuple[list[ScheduleSpec], dict[str, tuple[float, str]]]:
        """The API's schedules, and the last run (due time, task id) of every schedule
        whose runs it records."""
        ...

    async def save(self, spec: ScheduleSpec) -> None: ...

    async def delete(self, name: str) -> None: ...

    async def claim(self, name: str, due: float, task_id: str) -> bool:
        """Record that ``due`` ran (submitting ``task_id``); False when another instance
        recorded it first."""
        ...


class MemorySchedules:
    """API schedules live as long as the process (the memory store)."""

    async def load(self) -> tuple[list[ScheduleSpec], dict[str, tuple[float, str]]]:
        return [], {}

    async def save(self, spec: ScheduleSpec) -> None:
        pass

    async def delete(self, name: str) -> None:
        pass

    async def claim(self, name: str, due: float, task_id: str) -> bool:
        return True


class Scheduler:
    """Fires the engine's schedules: one timer for the earliest due one."""

    def __init__(
        self, engine: Engine, configured: list[ScheduleSpec], store: ScheduleStore
    ) -> None:
        self._engine = engine
        self._store = store
        self.schedules: dict[str, Schedule] = {s.name: Schedule(s, "config") for s in configured}
        self._wake: anyio.Event | None = None
        self.ready = anyio.Event()
        watch = getattr(engine.clock, "watch", None)
        if watch is not None:
            watch(self.poke)

    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ start
    async def _start(self) -> None:
        specs, runs = await self._store.load()
        for spec in specs:
            if spec.name not in self.schedules:
                self.schedules[spec.name] = Schedule(spec, "api")
        history = self._history()
        for name, run in runs.items():
            if name not in history or history[name][0] < run[0]:
                history[name] = run
        now = self._engine.clock.now()
        for s in self.schedules.values():
            if s.spec.name in history:
                s.last_run, s.last_task_id = history[s.spec.name]
            s.next_run = self._first_due(s, now)

    def _history(self) -> dict[str, tuple[float, str]]:
        """The last run of each schedule, from the keys of the tasks held here."""
        found: dict[str, tuple[float, str]] = {}
        for task in self._engine.registry.newest():
            key = task.unique_key
            if key is None or not key.startswith(KEY_PREFIX):
                continue
            name, _, due = key[len(KEY_PREFIX) :].rpartition(":")
            try:
                at = float(due)
            except ValueError:
                continue
            if name not in found or found[name][0] < at:
                found[name] = (at, task.id)
        return found

    def _first_due(self, s: Schedule, now: float) -> float:
        """After a restart: a run missed while down is due now (``catch_up = "one"``)."""
        if s.last_run is not None:
            missed = next_after(s.spec, s.last_run)
            if missed <= now and s.spec.catch_up == "one":
                # The latest missed due time: its key makes a second restart a no-op.
                return last_at_or_before(s.spec, now)
        return next_after(s.spec, now)

    # ------------------------------------------------------------------ the timer
    async def _refresh(self) -> None:
        """A shared store: take in the schedules other instances added, changed or
        deleted through the API (and their runs), about every :data:`MAX_SLEEP_S`."""
        try:
            specs, runs = await self._store.load()
        except Exception as exc:  # the store reports its outage; try again next turn
            _logger.warning("schedules: cannot read the store's schedules: %s", exc)
            return
        now = self._engine.clock.now()
        wanted = {s.name: s for s in specs}
        for name, s in list(self.schedules.items()):
            if s.source == "api" and name not in wanted:
                del self.schedules[name]
        for name, spec in wanted.items():
            known = self.schedules.get(name)
            if known is None:
                added = self.schedules[name] = Schedule(spec, "api")
                added.next_run = next_after(spec, now)
            elif known.source == "api" and known.spec != spec:
                known.spec = spec
                known.next_run = next_after(spec, now)
        for name, (last, task_id) in runs.items():
            ran = self.schedules.get(name)
            if ran is not None and (ran.last_run is None or ran.last_run < last):
                ran.last_run, ran.last_task_id = last, task_id

    async def run(self) -> None:
        await self._start()
        shared = self._engine.store is not None
        refreshed = self._engine.clock.now()
        while True:
            now = self._engine.clock.now()
            if shared and now - refreshed >= MAX_SLEEP_S:
                refreshed = now
                await self._refresh()
            for s in list(self.schedules.values()):
                if not s.spec.paused and s.next_run is not None and s.next_run <= now:
                    due = s.next_run
                    s.next_run = next_after(s.spec, max(due, now))
                    await self._fire(s, due, manual=False)
            self.ready.set()  # loaded, and what was due at start has fired
            self._wake = anyio.Event()
            dues = [
                s.next_run
                for s in self.schedules.values()
                if not s.spec.paused and s.next_run is not None
            ]
            now = self._engine.clock.now()
            delay = min(MAX_SLEEP_S, min(dues, default=math.inf) - now)
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._wake.wait()

    async def _fire(self, s: Schedule, due: float, *, manual: bool) -> str | None:
        """Submit one run; returns its task id (``None``: skipped or refused, logged)."""
        engine, spec = self._engine, s.spec
        if spec.overlap == "skip" and not manual and await self._unfinished(s.last_task_id):
            engine.log("info", f"schedule {spec.name}: skipped, the previous run is unfinished")
            return None
        key = run_key(spec.name, due) if not manual else None
        task_spec = TaskSpec(
            type=spec.type,
            payload=spec.payload,
            priority=spec.priority,
            timeout_s=spec.timeout,
            max_retries=spec.max_retries,
            unique_key=key,
            unique_for=KEY_HOLD_S if key else None,
            on_duplicate="return",
        )
        try:
            (task,) = await engine.submit_many([task_spec])
        except ShuttingDown:
            # Not a fault: the run is not recorded, so a durable store's catch_up submits
            # it at the next start.
            engine.log(
                "info", f"schedule {spec.name}: run at {rfc3339(due)} left for the next start"
            )
            return None
        except EngineError as exc:
            engine.log("warning", f"schedule {spec.name}: run at {rfc3339(due)} refused: {exc}")
            return None
        if not manual and not await self._store.claim(spec.name, due, task.id):
            return task.id  # recorded by another instance (the key made it one task)
        s.last_run, s.last_task_id = due, task.id
        return task.id

    async def _unfinished(self, task_id: str | None) -> bool:
        if task_id is None:
            return False
        try:
            task = await self._engine.lookup(task_id)
        except NotFound:
            return False
        return not task.status.final

    # ------------------------------------------------------------------ the API's calls
    def get(self, name: str) -> Schedule:
        s = self.schedules.get(name)
        if s is None:
            raise NotFound(f"no schedule named {name!r}")
        return s

    async def view(self, s: Schedule) -> ScheduleView:
        spec = s.spec
        status = None
        if s.last_task_id is not None:
            try:
                status = (await self._engine.lookup(s.last_task_id)).status.value
            except NotFound:
                status = None
        return ScheduleView(
            name=spec.name,
            type=spec.type,
            cron=spec.cron,
            every=spec.every,
            timezone=spec.timezone,
            payload=spec.payload,
            priority=spec.priority,
            timeout=spec.timeout,
            max_retries=spec.max_retries,
            paused=spec.paused,
            overlap=spec.overlap,
            catch_up=spec.catch_up,
            source=s.source,
            next_run=None if spec.paused else rfc3339(s.next_run),
            last_run=rfc3339(s.last_run),
            last_task_id=s.last_task_id,
            last_status=status,
        )

    def _writable(self, s: Schedule) -> None:
        if s.source == "config":
            raise ReadOnly(
                f"schedule {s.spec.name!r} comes from the configuration file"
                f" ({self._engine.config.source}); change it there"
            )

    async def add(self, spec: ScheduleSpec) -> Schedule:
        self._check(spec)
        if spec.name in self.schedules:
            raise AlreadyExists(f"a schedule named {spec.name!r} exists")
        await self._store.save(spec)
        s = self.schedules[spec.name] = Schedule(spec, "api")
        s.next_run = next_after(spec, self._engine.clock.now())
        self.poke()
        return s

    async def replace(self, name: str, spec: ScheduleSpec) -> Schedule:
        s = self.get(name)
        self._writable(s)
        self._check(spec)
        await self._store.save(spec)
        s.spec = spec
        s.next_run = next_after(spec, self._engine.clock.now())
        self.poke()
        return s

    async def delete(self, name: str) -> None:
        s = self.get(name)
        self._writable(s)
        await self._store.delete(name)
        del self.schedules[name]

    async def run_now(self, name: str) -> str | None:
        """One run now, whatever the rule, pause or overlap say."""
        s = self.get(name)
        return await self._fire(s, self._engine.clock.now(), manual=True)

    def _check(self, spec: ScheduleSpec) -> None:
        try:
            check_schedule(spec)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if self._engine.types.get(spec.type) is None:
            raise InvalidRequest(f"type: unknown task type {spec.type!r}")


class ReadOnly(EngineError):
    code = "read_only"


class AlreadyExists(EngineError):
    code = "already_exists"
