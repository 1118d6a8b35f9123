"""The attached :class:`~.source.DashboardSource`: a server's HTTP + WebSocket API
(``workerpool-tui attach URL``).

**Feeding.** :meth:`RemoteSource.run` (one Textual worker of the app, cancelled when the
app leaves) holds the connection (:mod:`.remote_link`): it opens ``/api/v1/ws/tasks``,
reads the types, the pool bound and the instance once per connection over HTTP, then
appends each decoded message to a bounded inbox; it never touches the view. The tick's
:meth:`take` drains the inbox without waiting and folds it into the same
:class:`~.view_model.Changes` the engine's bridge gives: a ``snapshot`` replaces the task
view (a bounded :class:`~.shared_tasks.SharedTasks`, as in cluster mode) and says
"rebuild", so nothing is ever duplicated across a reconnect; ``task`` events patch it;
``stats`` (every second) feed the stats bar, the counts and the charts; ``pool``, ``bulk``
and ``resync`` as the bridge treats their bus twins. An inbox past :data:`INBOX_MAX`
messages (the dashboard far behind) is dropped and the stream reopened: a fresh
snapshot is cheaper than catching up.

**Connection state** (:meth:`connection`, shown in the header), reconnecting with
backoff, and a refused token: :mod:`.remote_link`. A refused token ends the dashboard
with status 1 (as the client commands do for a refusal), printing the reason.

**What only exists in-process.** The engine's log records are not in the API: the log
panel shows the stream's own lines (connections, bulk actions). The API side-car's
status shows the attached URL. Quitting leaves the server and its tasks running.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from ..client.api import ServerUrl, task_path
from ..core import Task, TaskStatus
from ..core.bulk import Action, BulkFilter, BulkResult
from ..core.engine import EngineStats, PoolState
from ..core.instance_view import InstanceInfo
from ..core.procpool.pool import ProcessInfo
from ..core.stats import ScalingDecision
from ..core.worker_view import WorkerInfo
from ..server.schemas import (
    BulkMessage,
    PoolMessage,
    ResyncMessage,
    SnapshotMessage,
    StatsMessage,
    TaskMessage,
)
from .bridge import HISTORY_S, LOG_BACKLOG
from .relatives import Relative, relatives
from .remote_http import (
    DEFAULT_CAP,
    RemoteApi,
    RemoteSchedules,
    empty_stats,
    instance_info,
    pool_cap,
    process_info,
    task_from_view,
    type_info,
    worker_info,
)
from .remote_link import BACKOFF_MAX_S, BACKOFF_MIN_S, Link
from .shared_tasks import VIEW_MAX, SharedTasks
from .source import ScheduleOps
from .view_model import Changes, Query, ServerStatus, SubmitRequest, TypeInfo, query_tasks

INBOX_MAX = 50_000
"""Messages waiting for the tick; past it the stream is reopened (see the docstring)."""


class RemoteSource:
    """A server's API as a :class:`~.source.DashboardSource` (see the module docstring)."""

    def __init__(
        self,
        server: ServerUrl,
        token: str | None = None,
        *,
        view_max: int = VIEW_MAX,
        idle_timeout_s: float = 5.0,
        backoff: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = server
        self._clock = clock
        """Wall time for ages and chart seconds (snapshot tests freeze it)."""
        self.api = RemoteApi(server, token)
        self.link = Link(
            server,
            token,
            idle_timeout_s=idle_timeout_s,
            backoff=backoff,
            log=self._log,
            changed=self._pool_changed,
        )
        self._view = SharedTasks(limit=view_max)
        self._inbox: deque[Any] = deque()
        self._changes = Changes()
        self._logs: deque[tuple[str, str]] = deque(maxlen=LOG_BACKLOG)
        self._stats = empty_stats()
        self._types: list[TypeInfo] = []
        self._cap = DEFAULT_CAP
        self._workers: list[WorkerInfo] = []
        self._processes: list[ProcessInfo] = []
        self._instance: str | None = None
        self._cluster = False
        self.throughput: deque[float] = deque(maxlen=HISTORY_S)
        self.queue_depth: deque[float] = deque(maxlen=HISTORY_S)
        self.workers: deque[float] = deque(maxlen=HISTORY_S)
        self._sampled_second: int | None = None
        self.resyncs = 0
        self.events_seen = 0
        self.snapshots = 0
        """Snapshots folded so far (one per connection; tests wait on it)."""
        self.shared: SharedTasks | None = None
        self.shared_stale = False

    # ------------------------------------------------------------------ the connection
    async def run(self) -> None:
        """Hold the connection until cancelled (or the token is refused)."""
        await self.link.run(self._on_connect, self._inbox, INBOX_MAX)

    async def _on_connect(self) -> None:
        """What is not in the stream, read once per connection."""
        types = await self.api.call("GET", "/api/v1/types", expect=("types",))
        self._types = [type_info(t) for t in types["types"]]
        await self.refresh_workers()
        _, self._cluster = await self.instances()
        self._cap = pool_cap(await self.api.call("GET", "/openapi.json"))

    def _log(self, level: str, line: str) -> None:
        self._logs.append((level, line))

    def _pool_changed(self) -> None:
        self._changes.pool = True

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def attempts(self) -> int:
        """Failed connection attempts since the last success."""
        return self.link.attempts

    def connection(self) -> str:
        return self.link.state()

    async def wait_fatal(self) -> str:
        return await self.link.wait_fatal()

    # ------------------------------------------------------------------ folding
    def pump(self) -> None:
        """Fold the inbox into the changes (never waits)."""
        inbox = self._inbox
        if not inbox:
            return
        ch = self._changes
        ids = ch.task_ids
        n = len(inbox)
        for _ in range(n):
            m = inbox.popleft()
            kind = type(m)
            if kind is TaskMessage:
                task = task_from_view(m.task)
                old = self._view.get(task.id)
                if old is not None and old.logs:  # fetched for the detail view: keep them
                    task.logs, task.logs_dropped = old.logs, old.logs_dropped
                self._view.put((task,))
                if m.event != "progress":
                    ch.membership = True
                if not ch.rebuild:
                    ids.add(task.id)
            elif kind is StatsMessage:
                if m.stats.workers != self._stats.workers:
                    ch.pool = True
                self._stats = m.stats
            elif kind is SnapshotMessage:
                self._view.replace([task_from_view(t) for t in m.tasks])
                self._stats = m.stats
                self.snapshots += 1
                ch.rebuild = ch.membership = ch.pool = True
                ids.clear()
            elif kind is PoolMessage:
                w = self._stats.workers
                workers = msgspec.structs.replace(
                    w, current=m.current, min=m.min_workers, max=m.max_workers, paused=m.paused
                )
                self._stats = msgspec.structs.replace(self._stats, workers=workers)
                ch.pool = True
            elif kind is BulkMessage:
                self._log("info", f"bulk {m.action}: {m.changed} of {m.matched} changed")
                ch.rebuild = ch.membership = True
                ids.clear()
            elif kind is ResyncMessage:
                self.resyncs += 1
                ch.rebuild = ch.membership = True
                ids.clear()
        ch.events += n
        self.events_seen += n

    def take(self) -> Changes:
        self.pump()
        ch = self._changes
        self._changes = Changes()
        while self._logs:
            ch.logs.append(self._logs.popleft())
        return ch

    def sample(self) -> bool:
        """Once a (wall) second, a chart point from the latest stats."""
        second = int(self._clock())
        if self._sampled_second == second:
            return False
        self._sampled_second = second
        s = self._stats
        self.throughput.append(s.throughput.completed_last_s)
        self.queue_depth.append(float(s.queue.depth))
        self.workers.append(float(s.workers.current))
        return True

    def close(self) -> None:
        self._inbox.clear()

    # ------------------------------------------------------------------ reads
    @property
    def remote(self) -> bool:
        return True

    @property
    def cluster(self) -> bool:
        return self._cluster

    def now(self) -> float:
        return self._clock()

    def stats(self) -> EngineStats:
        return self._stats

    def server(self) -> ServerStatus:
        if self.connected:
            return ServerStatus(address=f"attached to {self.url.url}", ws_clients=-1)
        return ServerStatus(error=self.connection())

    def pool(self) -> PoolState:
        return self._stats.workers

    def paused(self) -> bool:
        return self._stats.workers.paused

    def scaling(self) -> list[ScalingDecision]:
        return list(self._stats.scaling)

    def tracked(self) -> int:
        return self._stats.tasks.total

    def get(self, task_id: str) -> Task | None:
        return self._view.get(task_id)

    def relatives(self, task: Task) -> tuple[list[Relative], int]:
        """From the view (bounded, as in cluster mode: children outside it are not listed)."""
        return relatives(task, self.get, None, self._view)

    def query(self, q: Query) -> tuple[list[Task], int]:
        return query_tasks(self._view, q, self._stats.tasks)

    def types(self) -> list[TypeInfo]:
        return list(self._types)

    def task_types(self) -> list[str]:
        return [t.name for t in self._types]

    def check_payload(self, type_name: str, payload: dict[str, object]) -> str | None:
        """The server checks the payload on submission (its refusal is shown)."""
        if self._types and type_name not in self.task_types():
            return f"unknown task type {type_name!r}"
        return None

    def queue_room(self) -> int:
        q = self._stats.queue
        return max(0, q.capacity - q.depth)

    def limits(self) -> tuple[int, int]:
        return self._cap, self._stats.queue.capacity

    def shutdown_timeout(self) -> float:
        return 0.0

    def running_ids(self) -> list[str]:
        return [t.id for t in self._view.active() if t.status is TaskStatus.RUNNING]

    def instance_name(self) -> str | None:
        return self._instance

    def degraded(self) -> str | None:
        return None

    def has_processes(self) -> bool:
        return bool(self._processes)

    def worker_infos(self) -> list[WorkerInfo]:
        return list(self._workers)

    def process_infos(self) -> list[ProcessInfo]:
        return list(self._processes)

    def stop_dispatch(self) -> None:
        """Quitting an attached dashboard leaves the server dispatching."""

    # ------------------------------------------------------------------ awaited
    async def refresh_task(self, task_id: str) -> None:
        self._seen(await self.api.task("GET", task_path(task_id)))

    async def refresh_workers(self) -> None:
        data = await self.api.call("GET", "/api/v1/workers", expect=("workers",))
        self._workers = [worker_info(w) for w in data["workers"]]
        self._processes = [process_info(p) for p in data.get("processes", [])]
        self._instance = data.get("instance")

    async def instances(self) -> tuple[list[InstanceInfo], bool]:
        data = await self.api.call("GET", "/api/v1/instances", expect=("instances", "cluster"))
        return [instance_info(i) for i in data["instances"]], bool(data["cluster"])

    def schedules(self) -> ScheduleOps:
        return RemoteSchedules(self.api)

    async def refresh_shared(self) -> None:
        """The stream renews the view (a fresh snapshot on each connection)."""

    async def submit(self, request: SubmitRequest) -> list[Task]:
        tasks = await self.api.submit(request.spec, request.count)
        self._view.put(tasks)
        self._changes.membership = True
        return tasks

    async def cancel(self, task_id: str, wait_s: float = 5.0) -> Task:
        return self._seen(await self.api.cancel(task_id))

    async def retry(self, task_id: str) -> Task:
        return self._seen(await self.api.retry(task_id))

    def _seen(self, task: Task) -> Task:
        """An action's answer is the task's latest state: show it now (its event follows)."""
        self._view.put((task,))
        self._changes.membership = True
        self._changes.task_ids.add(task.id)
        return task

    async def bulk(self, action: Action, flt: BulkFilter, *, dry_run: bool = False) -> BulkResult:
        body = {"action": action, "filter": msgspec.to_builtins(flt), "dry_run": dry_run}
        data = await self.api.call("POST", "/api/v1/tasks/bulk", body, expect=("matched",))
        return msgspec.convert(data, BulkResult)

    async def resize(
        self, min_workers: int | None = None, max_workers: int | None = None
    ) -> PoolState:
        body = {"min_workers": min_workers, "max_workers": max_workers}
        return self._pool(await self.api.call("PATCH", "/api/v1/pool", body, expect=("current",)))

    async def set_paused(self, paused: bool) -> PoolState:
        body = {"paused": paused}
        return self._pool(await self.api.call("PATCH", "/api/v1/pool", body, expect=("current",)))

    def _pool(self, view: dict[str, Any]) -> PoolState:
        """``GET|PATCH /api/v1/pool``'s answer, shown at once."""
        state = PoolState(
            current=int(view["current"]),
            busy=int(view["busy"]),
            idle=int(view["idle"]),
            min=int(view["min_workers"]),
            max=int(view["max_workers"]),
            paused=bool(view["paused"]),
            auto_scaling=bool(view["auto_scaling"]),
        )
        self._stats = msgspec.structs.replace(self._stats, workers=state)
        self._changes.pool = True
        return state
