"""The in-process :class:`~.source.DashboardSource`: the link between this process's
engine and the dashboard (``EngineSource``; ``Bridge`` is its older name, kept).

The bridge holds the dashboard's only bus subscription. The app's steady tick calls
:meth:`Bridge.pump`, which drains the subscription without waiting and folds the events
into "what changed" (:class:`Changes`): the ids of tasks whose row must be redrawn, whether
the set of rows may have changed, pool changes and log lines. A burst of ten thousand
events costs one set of ids, never ten thousand redraws; a subscriber that fell behind is
told ``RESYNC`` by the bus, and the bridge turns that into "rebuild everything".

Everything the widgets need is read here (tasks, stats, types, histories) and every
engine call the dashboard makes goes through here, so widgets never see the bus or the
engine. Nothing here imports Textual: the bridge is tested on its own. The values it
answers with (queries, changes, type infos) live in :mod:`.view_model`, shared with the
remote source.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ..core import Engine, Task, TaskStatus
from ..core.bulk import Action, BulkFilter, BulkResult, bulk_summary, run_bulk
from ..core.bus import RESYNC, BulkEvent, LogEvent, PoolEvent, TaskEvent
from ..core.engine import EngineStats, PoolState
from ..core.instance_view import InstanceInfo, instance_infos
from ..core.models import EventKind
from ..core.procpool.pool import ProcessInfo
from ..core.stats import ScalingDecision
from ..core.worker_view import WorkerInfo, worker_infos
from ..logging import RecordBuffer
from .relatives import Relative, relatives
from .schedule_ops import SchedulerOps
from .shared_tasks import SharedTasks
from .source import ScheduleOps
from .type_view import type_infos
from .view_model import (
    SORT_COLUMNS,
    Changes,
    Query,
    ServerStatus,
    SortSpec,
    SubmitRequest,
    TypeInfo,
    matches_search,
    query_tasks,
    short_id,
)

__all__ = [
    "SORT_COLUMNS",
    "Bridge",
    "Changes",
    "EngineSource",
    "Query",
    "ServerStatus",
    "SortSpec",
    "SubmitRequest",
    "TypeInfo",
    "matches_search",
    "short_id",
]

BUS_BUFFER = 20_000
"""The bridge's bus buffer; past it the bus drops the buffer and sends RESYNC."""
MAX_CHANGED = 5_000
"""More changed tasks than this between two ticks: stop collecting ids, rebuild instead."""
LOG_BACKLOG = 500
"""Log lines waiting for the next tick (oldest dropped first)."""
HISTORY_S = 180
"""Seconds of chart history (three minutes)."""


class EngineSource:
    """The engine in this process as a :class:`~.source.DashboardSource`."""

    def __init__(
        self,
        engine: Engine,
        *,
        bus_buffer: int = BUS_BUFFER,
        max_changed: int = MAX_CHANGED,
        records: RecordBuffer | None = None,
        server_status: Callable[[], ServerStatus] | None = None,
        stats_fn: Callable[[], EngineStats] | None = None,
    ) -> None:
        self._engine = engine
        self.sub = engine.bus.subscribe(maxsize=bus_buffer, name="dashboard")
        self.max_changed = max_changed
        self._changes = Changes()
        self._logs: deque[tuple[str, str]] = deque(maxlen=LOG_BACKLOG)
        self._records = records
        if records is not None:
            # Called from whichever thread logs; a bounded deque append is thread-safe.
            records.listener = lambda level, line: self._logs.append((level, line))
            for line in records.lines:
                self._logs.append(line)
        self._server_status = server_status or (lambda: ServerStatus(error="not started"))
        self._stats_fn = stats_fn or engine.stats
        self.throughput: deque[float] = deque(maxlen=HISTORY_S)
        self.queue_depth: deque[float] = deque(maxlen=HISTORY_S)
        self.workers: deque[float] = deque(maxlen=HISTORY_S)
        self._sampled_second: int | None = None
        self._finished_at_sample = engine.stats_data.finished_total
        self.events_seen = 0
        self.resyncs = 0
        self.shared: SharedTasks | None = SharedTasks() if engine.shared else None
        """Cluster mode: the view of the cluster's tasks the table reads (see
        :meth:`refresh_shared`); ``None`` when the registry holds every task."""
        self.shared_stale = self.shared is not None
        """The shared view wants a fresh snapshot (at start, after a resync)."""

    # ------------------------------------------------------------------ folding
    def pump(self) -> None:
        """Drain the subscription (never waits) and fold the events into the changes.

        Under load a tick drains thousands of events, nearly all of them task events, so
        those are folded with comprehensions; the rare others take a plain loop.
        """
        batch = self.sub.get_nowait()
        if not batch:
            return
        ch = self._changes
        ids = ch.task_ids
        task_events = [e for e in batch if type(e) is TaskEvent]
        if len(task_events) != len(batch):
            for event in batch:
                if event is RESYNC:
                    self.resyncs += 1
                    self.shared_stale = self.shared is not None
                    ch.rebuild = True
                    ch.membership = True
                    ch.pool = True
                    ids.clear()
                elif type(event) is PoolEvent:
                    ch.pool = True
                elif type(event) is BulkEvent:
                    # Many tasks changed without their own events: read them afresh.
                    ch.rebuild = True
                    ch.membership = True
                    ids.clear()
                    self._logs.append(("info", bulk_summary(event)))
                elif type(event) is LogEvent and self._records is None:
                    # Without a record buffer (tests, embedding) engine log lines come
                    # from the bus.
                    self._logs.append((event.level, event.message))
        if task_events:
            if self.shared is not None:
                self.shared.put([e.task for e in task_events])
            if not ch.membership:
                progress = EventKind.PROGRESS
                ch.membership = any(e.kind is not progress for e in task_events)
            if not ch.rebuild:
                ids.update([e.task.id for e in task_events])
                if len(ids) > self.max_changed:
                    ch.rebuild = True
                    ids.clear()
        ch.events += len(batch)
        self.events_seen += len(batch)

    def take(self) -> Changes:
        """Pump, then hand over everything that changed and start afresh."""
        self.pump()
        ch = self._changes
        self._changes = Changes()
        while self._logs:
            ch.logs.append(self._logs.popleft())
        return ch

    @property
    def pending_ids(self) -> int:
        """Changed ids waiting for the next tick (bounded by ``max_changed``)."""
        return len(self._changes.task_ids)

    @property
    def pending_logs(self) -> int:
        return len(self._logs)

    def close(self) -> None:
        self.sub.close()
        if self._records is not None:
            self._records.listener = None

    # ------------------------------------------------------------------ sampling
    def sample(self) -> bool:
        """Once per (engine clock) second, record chart points; True when a point was added."""
        now = self._engine.clock.now()
        second = int(now)
        if self._sampled_second == second:
            return False
        elapsed = 1 if self._sampled_second is None else max(1, second - self._sampled_second)
        self._sampled_second = second
        finished = self._engine.stats_data.finished_total
        self.throughput.append((finished - self._finished_at_sample) / elapsed)
        self._finished_at_sample = finished
        stats = self._stats_fn()
        self.queue_depth.append(float(stats.queue.depth))
        self.workers.append(float(stats.workers.current))
        return True

    # ------------------------------------------------------------------ reading
    def now(self) -> float:
        return self._engine.clock.now()

    def stats(self) -> EngineStats:
        return self._stats_fn()

    def server(self) -> ServerStatus:
        return self._server_status()

    def pool(self) -> PoolState:
        return self._stats_fn().workers

    def scaling(self) -> list[ScalingDecision]:
        return list(self._engine.stats_data.scaling)

    def tracked(self) -> int:
        """Tasks the engine tracks, whatever their status."""
        return len(self._engine.registry)

    def get(self, task_id: str) -> Task | None:
        task = self._engine.get(task_id)
        if task is None and self.shared is not None:
            return self.shared.get(task_id)
        return task

    def relatives(self, task: Task) -> tuple[list[Relative], int]:
        """``task``'s parents and children with their statuses (see :mod:`.relatives`)."""
        return relatives(task, self.get, self._engine.registry, self.shared)

    def types(self) -> list[TypeInfo]:
        return type_infos(self._engine)

    def shutdown_timeout(self) -> float:
        return self._engine.config.worker.shutdown_timeout

    def running_ids(self) -> list[str]:
        return [t.id for t in self._engine.registry.active() if t.status is TaskStatus.RUNNING]

    def query(self, q: Query) -> tuple[list[Task], int]:
        """A window of the filtered, sorted tasks and how many match (see
        :func:`.view_model.query_tasks`); in cluster mode over the cluster's view, with
        the cluster's counts."""
        if self.shared is None:
            return query_tasks(self._engine.registry, q)
        return query_tasks(self.shared, q, self._stats_fn().tasks)

    # ------------------------------------------------------------------ cluster and workers
    @property
    def cluster(self) -> bool:
        """Cluster mode: the engine's tasks live in a store shared by several instances."""
        return self._engine.shared

    def instance_name(self) -> str | None:
        """This instance's name in the cluster (``None`` outside one)."""
        store = self._engine.store
        return None if store is None else store.name

    async def instances(self) -> tuple[list[InstanceInfo], bool]:
        """``(instances, cluster)``: the cluster's, or this process alone outside one."""
        return await instance_infos(self._engine)

    def worker_infos(self) -> list[WorkerInfo]:
        return worker_infos(self._engine.pool)

    def process_infos(self) -> list[ProcessInfo]:
        """The worker processes (``[]`` when no type runs in one)."""
        procs = self._engine.procs
        return procs.infos() if procs is not None else []

    def schedules(self) -> ScheduleOps:
        """The engine's recurring schedules, for the Schedules screen."""
        return SchedulerOps(self._engine.scheduler)

    async def refresh_workers(self) -> None:
        """Nothing to fetch: :meth:`worker_infos` reads the pool itself."""

    async def refresh_task(self, task_id: str) -> None:
        """Nothing to fetch: the registry holds the task, log lines included."""

    def task_types(self) -> list[str]:
        return self._engine.types.names()

    def has_processes(self) -> bool:
        return self._engine.procs is not None

    def degraded(self) -> str | None:
        """Why the engine is not fully working now (its store lost PostgreSQL, say)."""
        return self._engine.degraded()

    async def wait_fatal(self) -> str:
        """Return the reason once a component of the engine failed for good."""
        return await self._engine.wait_fatal()

    async def refresh_shared(self) -> None:
        """Cluster mode: replace the view of the cluster's tasks with a fresh snapshot
        (the bridge's next :meth:`take` says "rebuild")."""
        if self.shared is None:
            return
        self.shared_stale = False
        tasks = await self._engine.snapshot()
        self.shared.replace(tasks)
        ch = self._changes
        ch.rebuild = ch.membership = True
        ch.task_ids.clear()

    # ------------------------------------------------------------------ validation
    def check_payload(self, type_name: str, payload: dict[str, Any]) -> str | None:
        """Why ``payload`` does not fit ``type_name`` (None when it does)."""
        tt = self._engine.types.get(type_name)
        if tt is None:
            return f"unknown task type {type_name!r}"
        try:
            tt.check_payload(payload)
        except ValueError as exc:
            return str(exc)
        return None

    def queue_room(self) -> int:
        return self._engine.queue.free

    def limits(self) -> tuple[int, int]:
        """``(max_concurrent_tasks, queue_capacity)``: bounds the forms check against."""
        return self._engine.config.task.max_concurrent_tasks, self._engine.queue.capacity

    # ------------------------------------------------------------------ actions
    async def submit(self, request: SubmitRequest) -> list[Task]:
        return await self._engine.submit_many([request.spec] * request.count)

    async def cancel(self, task_id: str, wait_s: float = 5.0) -> Task:
        return await self._engine.cancel(task_id, wait_s=wait_s)

    async def retry(self, task_id: str) -> Task:
        return await self._engine.retry(task_id)

    async def bulk(self, action: Action, flt: BulkFilter, *, dry_run: bool = False) -> BulkResult:
        return await run_bulk(self._engine, action, flt, dry_run=dry_run)

    async def resize(
        self, min_workers: int | None = None, max_workers: int | None = None
    ) -> PoolState:
        return self._engine.resize(min_workers=min_workers, max_workers=max_workers)

    async def set_paused(self, paused: bool) -> PoolState:
        engine = self._engine
        return engine.pause() if paused else engine.resume()

    def paused(self) -> bool:
        return self._engine.paused

    def stop_dispatch(self) -> None:
        """Quitting: pause dispatch now (running tasks may finish)."""
        self._engine.pause()

    @property
    def remote(self) -> bool:
        return False

    def connection(self) -> str | None:
        return None

    async def run(self) -> None:
        """The bus feeds the bridge: nothing to hold open."""


Bridge = EngineSource
"""The older name of :class:`EngineSource`."""
