"""The engine: one object composing the worker pool, the backlog, the index, the journal
and the bus, with the methods adapters call.

Adapters call plain methods (``submit_many``, ``cancel``, ``retry``, ``resize``,
``pause``; reads are ``async``: ``lookup``, ``list_tasks``, ``snapshot``) and follow state
through the bus and ``stats()``. All of it runs on one event loop; every background job
(workers, timeout watchdog, backlog timer, scaler, janitor, loop-lag probe, and a shared
store's claimer, listener and heartbeat) lives in the engine's own task group, which
``async with Engine(...)`` opens and closes, each job supervised (:mod:`.supervise`).

Where tasks live is the store's business: the local stores (memory, SQLite) are a
journal, and the engine keeps pending tasks in a :class:`~.backlog.LocalBacklog` and reads
from its registry; a shared store (the cluster) brings its own backlog and index
(:mod:`.storage`). The workers (:mod:`.workers`) do not tell the two apart.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from ..config import Config, ConfigError
from .backlog import Backlog, LocalBacklog, recover
from .bus import EventBus, LogEvent
from .clock import Clock, SystemClock
from .handlers import TypeRegistry, build_registry
from .index import LocalIndex, TaskIndex
from .journal import Journal, MemoryJournal
from .logs import LogFeed
from .models import Task, TaskStatus
from .procpool import process_pool
from .registry import Registry
from .schedules import MemorySchedules, Scheduler
from .stats import BusStats, EngineStats, QueueStats, Stats
from .storage import SharedStore
from .submission import Submissions
from .supervise import supervised
from .tally import Tally
from .task_actions import TaskActions
from .task_reads import TaskReads
from .type_settings import MemoryTypeSettings, RuntimeTypeSettings
from .typelimits import TypeGates
from .unique import UniqueKeys
from .waiting import Waiting
from .workers import PoolState, WorkerPool, error_summary

LOOP_PROBE_S = 0.25
SHARED_KEEP_FINISHED = 1000
"""With a shared store, how many of its finished tasks an instance keeps in memory (for
fresh answers right after they end); the cluster's history is in the database."""
VERSION = "0.1.0"
_logger = logging.getLogger("workerpool_tui.engine")

__all__ = ["Engine", "EngineStats", "PoolState", "error_summary", "random_id"]


def random_id() -> str:
    """A URL-safe, 16-hex-digit random id (64 bits): ``f"{n:016x}"`` without int.__format__."""
    return random.getrandbits(64).to_bytes(8, "big").hex()


class Engine(Submissions, TaskActions, TaskReads):
    def __init__(
        self,
        config: Config | None = None,
        *,
        types: TypeRegistry | None = None,
        clock: Clock | None = None,
        journal: Journal | None = None,
        store: SharedStore | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        cfg = config or Config()
        self.config = cfg
        self._tcfg = cfg.task
        self.types = types or build_registry(
            handlers=cfg.task.handlers, allow_shell=cfg.task.allow_shell
        )
        unknown = sorted(set(cfg.task.types) - set(self.types.names()))
        if unknown:
            raise ConfigError(
                f"{cfg.source}: task.types.{unknown[0]}: no such task type"
                f" (known: {', '.join(self.types.names())})"
            )
        self.procs = process_pool(self.types, cfg, self.log)
        """The worker processes of ``isolation = "process"`` types (``None``: no such type)."""
        self.clock: Clock = clock or SystemClock()
        self.store = store
        self.journal: Journal = store.journal if store else (journal or MemoryJournal())
        self.journaling = not isinstance(self.journal, MemoryJournal)
        """Whether changes are written down (the per-task paths skip the call when not)."""
        self._new_id = id_factory or random_id
        self.bus = EventBus()
        self.log_feed = LogFeed()
        self.tally = Tally()
        """Totals for ``GET /metrics`` (what this instance admitted, ran and finished)."""
        self.stats_data = Stats()
        self.waiting = Waiting(self.clock, self._release, self._cancel_waiting)
        """Pending tasks waiting for a time or for parents (local stores)."""
        self.unique = UniqueKeys()
        """Unique keys held (local stores; the cluster's database holds its own)."""
        self.pool = WorkerPool(self)
        self.scheduler = Scheduler(
            self,
            list(cfg.schedule),
            getattr(store or self.journal, "schedules", None) or MemorySchedules(),
        )
        """Recurring schedules (their API-made ones kept by the store, if it can)."""
        self.backlog: Backlog
        self.index: TaskIndex
        if store is None:
            self.registry = Registry(cfg.task.max_tracked_tasks)
            self.backlog = LocalBacklog(cfg.task.queue_capacity, self.pool.wake)
            self.index = LocalIndex(self.registry, self.waiting)
        else:
            # Only the tasks this instance runs, and a few it ran last.
            self.registry = Registry(cfg.task.max_concurrent_tasks + SHARED_KEEP_FINISHED)
            self.backlog, self.index = store.bind(self)
        self.gates = TypeGates(
            self.backlog,
            cfg.task.types,
            wake=self.pool.wake,
            owned=lambda task: self.registry.get(task.id) is task,
            running_of=self.pool.running_count,
            changed=self.journal.changed,
        )
        """Per-type concurrency, rate limit and pause in front of the backlog."""
        if self.procs is not None:  # process tasks never wait for a process on a worker
            self.gates.share_slots(
                [t.name for t in self.types if t.isolation == "process"], self.procs.size
            )
        self.type_settings = RuntimeTypeSettings(
            cfg.task.types,
            self.gates,
            getattr(store or self.journal, "type_settings", None) or MemoryTypeSettings(),
        )
        """``PATCH /api/v1/types/{name}``: applied here, kept by the store (if durable)."""
        self.backlog = self.gates
        self.queue = self.backlog
        """The backlog, by its old name (its length is the queue depth)."""
        self._seq = 0
        self._committing = 0
        """Tasks admitted and waiting for their commit: they hold their room in the queue."""
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._journal_stack = AsyncExitStack()
        self.started_at = self.clock.now()
        self._started_mono = time.monotonic()
        self.accepting = False
        self.closed = False
        self.fatal_error: str | None = None
        """Why a component could not go on (set once, by :meth:`report_fatal`)."""
        self._fatal: anyio.Event | None = None

    @property
    def loop_thread(self) -> int:
        """The event loop's thread (handlers' progress calls from elsewhere hop to it)."""
        return self.pool.loop_thread

    @property
    def shared(self) -> bool:
        """Tasks live in a store shared by several instances (the cluster)."""
        return self.store is not None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Engine:
        self._fatal = anyio.Event()
        # The journal's own group outlives the engine's: at shutdown the workers stop
        # first, then the journal writes down how they ended, then it closes.
        self._journal_stack = AsyncExitStack()
        jtg = await self._journal_stack.enter_async_context(anyio.create_task_group())
        try:
            recovered = await self.journal.open(jtg, self.report_fatal)
        except BaseException:
            # A store that cannot be opened (in use, corrupt): leave nothing running.
            await self._journal_stack.aclose()
            raise
        try:
            self._recover(recovered)
            await self.type_settings.load()  # before any task is dispatched
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.journal.close()
            await self._journal_stack.aclose()
            raise
        self._stack = AsyncExitStack()
        tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._tg = tg
        self.pool.start(tg)
        if self.procs is not None:
            self.procs.start()
        # Each keeps no state of its own between two turns: restarted after a failure.
        jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("timeout watchdog", self.pool.watchdog),
            ("backlog", self.backlog.run),
            ("scaler", self.pool.scaler),
            ("janitor", self._janitor),
            ("loop probe", self._loop_probe),
        ]
        if self.store is not None:
            jobs.append(("cluster store", self.store.run))
            jobs.append(("type settings", self.type_settings.follow))
        else:
            jobs.append(("waiting timer", self.waiting.run))
        jobs.append(("scheduler", self.scheduler.run))
        for name, job in jobs:
            tg.start_soon(self._supervised, f"engine {name}", job, name=name)
        self.accepting = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def _supervised(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        await supervised(name, job, self.report_fatal, restart=True, logger=_logger)

    def report_fatal(self, reason: str) -> None:
        """A component cannot go on (see :mod:`.supervise`): stop taking work and tell
        whoever owns the process (:meth:`wait_fatal`) to shut down and exit non-zero.
        The first reason is kept in :attr:`fatal_error`."""
        if self.fatal_error is not None:
            return
        self.fatal_error = reason
        self.accepting = False
        _logger.critical("%s; shutting down", reason)
        self.bus.publish(LogEvent("critical", f"{reason}; shutting down", self.clock.now()))
        if self._fatal is not None:
            self._fatal.set()

    async def wait_fatal(self) -> str:
        """Return (with :attr:`fatal_error`) once a component reported a fatal failure."""
        if self._fatal is None:
            raise RuntimeError("the engine is not running")
        await self._fatal.wait()
        assert self.fatal_error is not None
        return self.fatal_error

    async def shutdown(self, grace_s: float | None = None) -> None:
        """Stop intake, let running tasks finish for up to ``grace_s`` (default
        ``worker.shutdown_timeout``), cancel the rest and stop every background job."""
        if self.closed or self._stack is None or self._tg is None:
            return
        self.accepting = False
        self.pool.paused = True  # workers take nothing new
        timeout = self.config.worker.shutdown_timeout if grace_s is None else grace_s
        with anyio.CancelScope(shield=True):
            if not self.journal.durable:
                for task in [t for t in self.registry.active() if t.status is TaskStatus.PENDING]:
                    if task.status is TaskStatus.PENDING:  # a parent's cancel took it
                        self._cancel_pending(task, "cancelled: shutting down")
            await self.pool.drain(timeout)
        # The task group must be left from the scope it was entered in, so not shielded;
        # its own exit waits for every worker to unwind.
        self._tg.cancel_scope.cancel()
        try:
            await self._stack.aclose()
        finally:
            try:
                with anyio.CancelScope(shield=True):
                    if self.procs is not None:
                        await self.procs.close()
                    # Workers marked their interrupted tasks final as they unwound; write it.
                    try:
                        await self.journal.commit()
                    finally:  # a store that cannot write must still be closed and unlocked
                        try:
                            if self.store is not None:
                                await self.store.stop()
                        finally:
                            await self.journal.close()
            finally:
                await self._journal_stack.aclose()
                self.closed = True
                self.bus.close()

    def _recover(self, tasks: Sequence[Task]) -> None:
        """Tasks from a local store: history stays history, pending work goes back in line."""
        if not tasks:
            return
        self._seq = max(task.seq for task in tasks)
        requeued = recover(
            tasks,
            registry=self.registry,
            backlog=self.backlog,
            changed=self.journal.changed,
            now=self.clock.now(),
            requeue_running=self.config.store.recover_running == "requeue",
            hold=self._hold_recovered,
        )
        if requeued:
            self.log("info", f"recovered {requeued} pending task(s) from the store")

    def _hold_recovered(self, tasks: list[Task]) -> list[Task]:
        """Recovered pending tasks: those runnable now (the others wait)."""
        self.unique.take(t for t in self.registry.newest() if t.unique_key is not None)
        return self.waiting.admit(tasks, self.registry.get)

    # ------------------------------------------------------------------ submission
    # ------------------------------------------------------------------ background jobs
    async def _janitor(self) -> None:
        interval = min(30.0, max(1.0, self._tcfg.cleanup_completed_tasks_after / 4))
        while True:
            await anyio.sleep(interval)
            self.run_cleanup()
            if self.store is not None:
                await self.store.retention()

    def run_cleanup(self) -> int:
        """Drop final tasks past their retention; returns how many (of this instance)."""
        if self.store is not None:  # keep only the newest few: history is in the store
            return len(self.registry.evict_overflow())
        self.unique.sweep(self.clock.now())
        dropped = self.registry.cleanup(
            self.clock.now(), self._tcfg.cleanup_completed_tasks_after, self._tcfg.keep_failed_for
        )
        if dropped:
            self.journal.forget(dropped)
        return len(dropped)

    async def _loop_probe(self) -> None:
        stats = self.stats_data
        while True:
            start = time.monotonic()
            await anyio.sleep(LOOP_PROBE_S)
            lag = max(0.0, time.monotonic() - start - LOOP_PROBE_S)
            self.pool.sample_busy()
            stats.loop_lag_s = lag
            stats.loop_lag_max_s = max(lag, stats.loop_lag_max_s * 0.98)

    def log(self, level: str, message: str) -> None:
        _logger.log(logging.getLevelName(level.upper()), message)
        self.bus.publish(LogEvent(level, message, self.clock.now()))

    # ------------------------------------------------------------------ pool control
    @property
    def paused(self) -> bool:
        return self.pool.paused

    @property
    def min_workers(self) -> int:
        return self.pool.min_workers

    @property
    def max_workers(self) -> int:
        return self.pool.max_workers

    @property
    def auto_scaling(self) -> bool:
        return self.pool.auto_scaling

    def pool_state(self) -> PoolState:
        return self.pool.state()

    def resize(
        self, *, min_workers: int | None = None, max_workers: int | None = None
    ) -> PoolState:
        """Change the bounds at run time; the pool moves into them at once."""
        self.pool.resize(min_workers=min_workers, max_workers=max_workers)
        return self.pool.state()

    def pause(self) -> PoolState:
        """Stop dispatching (running tasks go on)."""
        self.pool.pause()
        return self.pool.state()

    def resume(self) -> PoolState:
        self.pool.resume()
        return self.pool.state()

    def scale_once(self, busy_avg: float | None = None) -> int:
        return self.pool.scale_once(busy_avg)

    def uptime_s(self) -> float:
        return round(time.monotonic() - self._started_mono, 3)

    def stats(self) -> EngineStats:
        now = self.clock.now()
        bus = self.bus.stats()
        backlog = self.backlog
        return EngineStats(
            tasks=self.index.counts(),
            queue=QueueStats(depth=len(backlog), capacity=backlog.capacity),
            workers=self.pool.state(),
            throughput=self.stats_data.throughput(now),
            latency=self.stats_data.latency(),
            bus=BusStats(**bus),
            scaling=list(self.stats_data.scaling)[-10:],
            uptime_s=self.uptime_s(),
        )
