"""The API's wire types: request bodies, response bodies and WebSocket messages.

Handlers decode and encode with exactly these structs, and ``openapi.py`` derives the
OpenAPI document from them, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ..core.admission import MAX_RETRIES_MAX, PRIORITY_MAX, PRIORITY_MIN
from ..core.engine import EngineStats, PoolState
from ..core.models import EventKind, TaskView
from ..core.order import MAX_PARENTS, MAX_UNIQUE_KEY

Priority = Annotated[int, msgspec.Meta(ge=PRIORITY_MIN, le=PRIORITY_MAX)]
MaxRetries = Annotated[int, msgspec.Meta(ge=0, le=MAX_RETRIES_MAX)]


class SubmitRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/v1/tasks``. ``timeout`` is seconds or a duration string (``"300ms"``).
    Every range is the engine's (:mod:`workerpool_tui.core.admission`)."""

    type: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: Priority | None = None
    """Left out: the type's ``priority`` (``[task.types.NAME]``), else 0."""
    timeout: float | str | None = None
    max_retries: MaxRetries | None = None
    delay: float | str | None = None
    """Run no sooner than this long from now (seconds or a duration); not with ``run_at``."""
    run_at: datetime | None = None
    """Run no sooner than this time (RFC 3339 with a zone; a past time means now)."""
    depends_on: Annotated[list[str], msgspec.Meta(max_length=MAX_PARENTS)] = msgspec.field(
        default_factory=list
    )
    """Ids of tasks that must complete first; in a batch ``"$N"`` is its N-th task."""
    unique_key: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_UNIQUE_KEY)] | None = None
    unique_for: float | str | None = None
    """How long the key stays taken from submission (default: until the task is final)."""
    on_duplicate: Literal["error", "return"] = "error"


class BatchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /api/v1/tasks/batch``: all of them are admitted, or none."""

    tasks: list[SubmitRequest]


class PoolView(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/pool``: the three settable fields under the names ``PATCH`` takes, so an
    answer can be sent back as it is, then the read-only state. (The stats object's
    ``workers`` keeps the engine's names ``min`` / ``max``: the dashboard and the page read
    it.)"""

    min_workers: int
    max_workers: int
    paused: bool
    current: int
    busy: int
    idle: int
    auto_scaling: bool

    @classmethod
    def of(cls, state: PoolState) -> PoolView:
        return cls(
            min_workers=state.min,
            max_workers=state.max,
            paused=state.paused,
            current=state.current,
            busy=state.busy,
            idle=state.idle,
            auto_scaling=state.auto_scaling,
        )


_READ_ONLY = msgspec.Meta(
    extra_json_schema={"readOnly": True, "description": "read-only: accepted and ignored"}
)


class PoolPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /api/v1/pool``: any of ``min_workers``, ``max_workers``, ``paused``; absent ones
    (or ``null``) stay as they are. The read-only fields of :class:`PoolView` are accepted
    and ignored, so that ``GET``'s answer can be sent back; any other field is refused."""

    min_workers: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_workers: Annotated[int, msgspec.Meta(ge=1)] | None = None
    paused: bool | None = None
    current: Annotated[int, _READ_ONLY] | None = None
    busy: Annotated[int, _READ_ONLY] | None = None
    idle: Annotated[int, _READ_ONLY] | None = None
    auto_scaling: Annotated[bool, _READ_ONLY] | None = None


class TaskList(msgspec.Struct, frozen=True):
    tasks: list[TaskView]
    total: int


class TaskBatch(msgspec.Struct, frozen=True):
    tasks: list[TaskView]


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    """``ok``; or ``degraded`` (with 503 and the ``reason``) while the store cannot do its
    whole job (the cluster's PostgreSQL is unreachable, say)."""

    status: str
    uptime_s: float
    version: str
    reason: str | None = None
    instance: str | None = None
    """This instance's name, in a cluster."""


class InstanceView(msgspec.Struct, frozen=True):
    """An instance of the cluster (``GET /api/v1/instances``)."""

    id: str
    name: str
    host: str
    pid: int
    version: str
    state: str
    """running, stopping, stopped, dead, or unresponsive (its heartbeat is past the lease)."""
    workers: int
    busy: int
    min_workers: int
    max_workers: int
    paused: bool
    done: int
    failed: int
    started_at: str | None
    heartbeat_at: str | None
    heartbeat_age_s: float
    this: bool
    """The instance answering."""


class InstanceList(msgspec.Struct, frozen=True):
    instances: list[InstanceView]
    cluster: bool
    """False outside cluster mode: the list holds only this process."""


class WorkerView(msgspec.Struct, frozen=True):
    """A worker of the instance answering (``GET /api/v1/workers``)."""

    id: int
    state: str
    """busy, idle, or retiring (leaving the pool after its current task)."""
    task_id: str | None
    """The task it runs now (``null`` when idle)."""
    task_type: str | None
    running_since: str | None
    """When the current task started (RFC 3339)."""
    running_s: float | None
    """How long the current task has run, in seconds."""
    done: int
    """Tasks it completed."""
    failed: int
    """Tasks it ran that failed for good (a retried attempt is not counted)."""


class ProcessView(msgspec.Struct, frozen=True):
    """A worker process of the instance answering (``isolation = "process"`` types)."""

    slot: int
    pid: int
    task_id: str | None
    """The task it runs now (``null`` when idle)."""
    cpu_pct: float
    """CPU since the previous read, in % of one core."""
    rss_bytes: int
    tasks_done: int
    """Tasks this process ran (a replacement starts at 0)."""
    restarts: int
    """Times the process of this slot died or was killed, and was replaced."""


class WorkerList(msgspec.Struct, frozen=True):
    workers: list[WorkerView]
    instance: str | None
    """The instance these workers belong to, in a cluster (pool controls and workers
    are per instance)."""
    processes: list[ProcessView] = msgspec.field(default_factory=list)
    """The worker processes (empty when no type has ``isolation = "process"``)."""


class TypeInfo(msgspec.Struct, frozen=True):
    """A task type, its settings (``[task.types.NAME]``, as changed at run time) and what
    it does here now. ``timeout``, ``max_retries``, ``priority``: the type's defaults for
    a submission that leaves them out (``null``: ``[task]``'s)."""

    name: str
    description: str
    payload_schema: dict[str, Any] | None
    isolation: Literal["thread", "process"] = "thread"
    concurrency: int = 0
    """At most this many run at once in this process; 0: no cap."""
    rate_limit: str = ""
    timeout: float | None = None
    max_retries: int | None = None
    priority: int | None = None
    paused: bool = False
    running: int = 0
    """Its tasks running in this process now."""
    held: int = 0
    """Its tasks waiting for the type's gate (cap, rate limit, pause); pending."""
    rate_limited: bool = False
    """The rate limit is holding tasks back right now."""


class TypePatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /api/v1/types/{name}``: any of ``concurrency`` (0: no cap), ``rate_limit``
    (``"N/s"``, ``"N/m"``, ``"N/h"``, ``""``: none), ``paused``; absent ones (or ``null``)
    stay as they are. All of it applies, or none (400 ``invalid_request``)."""

    concurrency: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None
    rate_limit: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    paused: bool | None = None


class TypeList(msgspec.Struct, frozen=True):
    types: list[TypeInfo]


# ---------------------------------------------------------------- WebSocket, server to client
class SnapshotMessage(msgspec.Struct, frozen=True, tag_field="type", tag="snapshot"):
    stats: EngineStats
    tasks: list[TaskView]


class TaskMessage(msgspec.Struct, frozen=True, tag_field="type", tag="task"):
    event: EventKind
    task: TaskView


class StatsMessage(msgspec.Struct, frozen=True, tag_field="type", tag="stats"):
    stats: EngineStats


class PoolMessage(msgspec.Struct, frozen=True, tag_field="type", tag="pool"):
    action: str
    reason: str
    current: int
    min_workers: int
    max_workers: int
    paused: bool


class ResyncMessage(msgspec.Struct, frozen=True, tag_field="type", tag="resync"):
    pass


class BulkMessage(msgspec.Struct, frozen=True, tag_field="type", tag="bulk"):
    """A bulk action changed many tasks; a fresh ``snapshot`` follows at once."""

    action: str
    matched: int
    changed: int
    skipped: dict[str, int]


WsMessage = SnapshotMessage | TaskMessage | StatsMessage | PoolMessage | ResyncMessage | BulkMessage

__all__ = [
    "BatchRequest",
    "BulkMessage",
    "EngineStats",
    "Health",
    "PoolMessage",
    "PoolPatch",
    "PoolState",
    "PoolView",
    "ProcessView",
    "ResyncMessage",
    "SnapshotMessage",
    "StatsMessage",
    "SubmitRequest",
    "TaskBatch",
    "TaskList",
    "TaskMessage",
    "TypeInfo",
    "TypeList",
    "TypePatch",
    "WsMessage",
]
