"""The endpoints of SPEC §8: one route table, which dispatch (``api.py``) and the OpenAPI
document (``openapi.py``) both read, so neither can list an endpoint the other lacks."""

from __future__ import annotations

from typing import Any

import msgspec

from ..core.models import TaskStatus
from .schemas import (
    BatchRequest,
    Health,
    InstanceList,
    PoolPatch,
    PoolView,
    SubmitRequest,
    TaskBatch,
    TaskList,
    TypeInfo,
    TypeList,
    TypePatch,
    WorkerList,
)

API_PREFIX = "/api/"
METRICS_PATH = "/metrics"
LIST_LIMIT_MAX = 1000
LIST_LIMIT_DEFAULT = 100
WS_PATH = "/api/v1/ws/tasks"
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".mjs": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".json": b"application/json; charset=utf-8",
    ".map": b"application/json; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
    ".txt": b"text/plain; charset=utf-8",
    ".woff2": b"font/woff2",
}
STATIC_MEDIA_TYPES = (
    *sorted({t.split(b";")[0].decode() for t in CONTENT_TYPES.values()}),
    "application/octet-stream",
)
"""What ``/static/{name}`` may answer with (the last for any other suffix)."""


class QueryParam(msgspec.Struct, frozen=True):
    name: str
    schema: dict[str, Any]
    description: str


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """One method on one path: how it is dispatched and how OpenAPI describes it."""

    method: str
    path: str
    """A template: ``{name}`` segments are parameters."""
    handler: str
    """The :class:`Api` method serving it."""
    summary: str
    status: int = 200
    request: Any = None
    response: Any = None
    """A struct type, or the media types of a body that is not JSON of a struct."""
    errors: tuple[str, ...] = ()
    """Error codes particular to this operation (``responses.ERROR_CODES``); those every
    request can meet (malformed HTTP, limits, host, token, shutdown) are added by
    ``openapi.py``."""
    query: tuple[QueryParam, ...] = ()
    websocket: bool = False
    other_answers: tuple[tuple[int, Any], ...] = ()
    """Answers that are not errors under another status: ``(status, struct)``."""

    @property
    def auth(self) -> bool:
        """Needs the token when one is set (``/metrics``: unless ``metrics.public``)."""
        return self.path.startswith(API_PREFIX) or self.path == METRICS_PATH


def _routes() -> tuple[Route, ...]:
    from ..core.bulk import BulkResult
    from ..core.engine import EngineStats
    from ..core.logs import LOGS_WAIT_MAX_S, LogSlice
    from ..core.models import TaskView
    from .ops import BulkRequest

    task_errors = ("not_found", "ambiguous_id", "store_unavailable")
    submit_errors = (
        "invalid_json",
        "unknown_task_type",
        "unsupported_media_type",
        "queue_full",
        "store_unavailable",
    )
    return (
        Route(
            method="GET",
            path="/health",
            handler="health",
            summary="Liveness: 200 ok, or 503 degraded (the store is unreachable)",
            response=Health,
            other_answers=((503, Health),),
        ),
        Route(
            method="GET",
            path="/openapi.json",
            handler="openapi",
            summary="This OpenAPI document",
            response=("application/json",),
        ),
        Route(
            method="GET",
            path=METRICS_PATH,
            handler="metrics",
            summary="Prometheus metrics (text format 0.0.4); needs the token unless"
            " metrics.public = true",
            response=("text/plain",),
        ),
        Route(
            method="GET",
            path="/",
            handler="index",
            summary="The web monitoring page",
            response=("text/html",),
            errors=("not_found",),
        ),
        Route(
            method="GET",
            path="/static/{name}",
            handler="static",
            summary="A file of the web page",
            response=STATIC_MEDIA_TYPES,
            errors=("not_found",),
        ),
        Route(
            method="POST",
            path="/api/v1/tasks",
            handler="submit",
            summary="Submit a task",
            status=201,
            request=SubmitRequest,
            response=TaskView,
            errors=(*submit_errors, "duplicate"),
            other_answers=((200, TaskView),),
        ),
        Route(
            method="GET",
            path="/api/v1/tasks",
            handler="list_tasks",
            summary="List tasks, newest first",
            response=TaskList,
            errors=("store_unavailable",),
            query=(
                QueryParam(
                    "status",
                    {"type": "string"},
                    "comma-separated statuses: " + ", ".join(s.value for s in TaskStatus),
                ),
                QueryParam("type", {"type": "string"}, "only tasks of this type"),
                QueryParam(
                    "q",
                    {"type": "string"},
                    "search: an id prefix, or part of the type or of the message"
                    " (case-insensitive)",
                ),
                QueryParam(
                    "limit",
                    {"type": "integer", "minimum": 0, "maximum": LIST_LIMIT_MAX},
                    f"page size (default {LIST_LIMIT_DEFAULT})",
                ),
                QueryParam("offset", {"type": "integer", "minimum": 0}, "tasks to skip"),
                QueryParam(
                    "waiting",
                    {"type": "string", "enum": ["time", "dependencies", "none", ""]},
                    "pending tasks waiting for a time, for their parents, or tasks waiting"
                    " for nothing (empty: no filter)",
                ),
                QueryParam(
                    "parent",
                    {"type": "string"},
                    "a task's full id: only its children (the tasks whose depends_on names"
                    " it), whatever their status",
                ),
            ),
        ),
        Route(
            method="POST",
            path="/api/v1/tasks/batch",
            handler="submit_batch",
            summary="Submit several tasks: all or nothing",
            status=201,
            request=BatchRequest,
            response=TaskBatch,
            errors=(*submit_errors, "duplicate"),
        ),
        Route(
            method="POST",
            path="/api/v1/tasks/bulk",
            handler="bulk_tasks",
            summary="Cancel, retry or delete every task a filter matches (delete: final"
            " tasks only); one `bulk` event instead of one per task",
            request=BulkRequest,
            response=BulkResult,
            errors=(
                "invalid_json",
                "unsupported_media_type",
                "not_found",
                "ambiguous_id",
                "store_unavailable",
            ),
        ),
        Route(
            method="GET",
            path="/api/v1/tasks/status/stats",
            handler="stats",
            summary="Pool and task statistics",
            response=EngineStats,
        ),
        Route(
            method="GET",
            path="/api/v1/tasks/{id}",
            handler="get_task",
            summary="One task",
            response=TaskView,
            errors=task_errors,
        ),
        Route(
            method="DELETE",
            path="/api/v1/tasks/{id}",
            handler="cancel_task",
            summary="Cancel a task (returns it as cancelled)",
            response=TaskView,
            errors=(*task_errors, "already_finished"),
        ),
        Route(
            method="POST",
            path="/api/v1/tasks/{id}/retry",
            handler="retry_task",
            summary="Submit a new task with the same type, payload and options",
            status=201,
            response=TaskView,
            errors=(*task_errors, "unknown_task_type", "queue_full"),
        ),
        Route(
            method="POST",
            path="/api/v1/tasks/{id}/run",
            handler="run_task",
            summary="Run a task waiting for a time now (a runnable or running one as it is)",
            response=TaskView,
            errors=(*task_errors, "already_finished", "blocked"),
        ),
        Route(
            method="GET",
            path="/api/v1/tasks/{id}/logs",
            handler="task_logs",
            summary="A task's log lines from line `since` on; with `wait`, a long poll: the"
            " answer comes when a line is logged, the task ends, or `wait` runs out",
            response=LogSlice,
            errors=task_errors,
            query=(
                QueryParam(
                    "since",
                    {"type": "integer", "minimum": 0},
                    "the number of the first line wanted (the `next` of the previous answer;"
                    " default 0)",
                ),
                QueryParam(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": LOGS_WAIT_MAX_S},
                    f"how long to wait for a new line, in seconds (a duration such as 10s is"
                    f" also taken), at"
                    f" most {LOGS_WAIT_MAX_S:g}s (default 0: answer at once)",
                ),
            ),
        ),
        *_schedule_routes(),
        Route(
            method="GET",
            path="/api/v1/types",
            handler="types",
            summary="Registered task types, their per-type settings and gates",
            response=TypeList,
        ),
        Route(
            method="PATCH",
            path="/api/v1/types/{name}",
            handler="patch_type",
            summary="Change a type's concurrency, rate_limit or paused (at once; a durable"
            " store keeps it across restarts, and a cluster shares it)",
            request=TypePatch,
            response=TypeInfo,
            errors=("invalid_json", "unsupported_media_type", "not_found"),
        ),
        Route(
            method="GET",
            path="/api/v1/instances",
            handler="instances",
            summary="The instances of the cluster (this process alone outside cluster mode)",
            response=InstanceList,
            errors=("store_unavailable",),
        ),
        Route(
            method="GET",
            path="/api/v1/workers",
            handler="workers",
            summary="The workers of the instance answering: state, current task, counts",
            response=WorkerList,
        ),
        Route(
            method="GET",
            path="/api/v1/pool",
            handler="get_pool",
            summary="Worker pool state",
            response=PoolView,
        ),
        Route(
            method="PATCH",
            path="/api/v1/pool",
            handler="patch_pool",
            summary="Resize, pause or resume the pool",
            request=PoolPatch,
            response=PoolView,
            errors=("invalid_json", "unsupported_media_type", "pool_conflict"),
        ),
        Route(
            method="GET",
            path="/api/v1/ws/tasks",
            handler="websocket",
            summary="Live events (WebSocket): snapshot, task, stats, pool, resync",
            status=101,
            errors=("forbidden_origin",),
            websocket=True,
        ),
    )


def _schedule_routes() -> tuple[Route, ...]:
    from ..core.schedules import ScheduleView
    from .schedules import ScheduleList, SchedulePatch, ScheduleRequest, ScheduleRun

    body_errors = ("invalid_json", "unsupported_media_type")
    return (
        Route(
            method="GET",
            path="/api/v1/schedules",
            handler="list_schedules",
            summary="Recurring schedules, by name",
            response=ScheduleList,
        ),
        Route(
            method="POST",
            path="/api/v1/schedules",
            handler="create_schedule",
            summary="Add a schedule (cron or every)",
            status=201,
            request=ScheduleRequest,
            response=ScheduleView,
            errors=(*body_errors, "already_exists", "store_unavailable"),
        ),
        Route(
            method="GET",
            path="/api/v1/schedules/{name}",
            handler="get_schedule",
            summary="One schedule, with next_run, last_run, last_task_id, last_status",
            response=ScheduleView,
            errors=("not_found",),
        ),
        Route(
            method="PATCH",
            path="/api/v1/schedules/{name}",
            handler="patch_schedule",
            summary="Change a schedule made through the API (pause, resume, rule, task)",
            request=SchedulePatch,
            response=ScheduleView,
            errors=(*body_errors, "not_found", "read_only", "store_unavailable"),
        ),
        Route(
            method="DELETE",
            path="/api/v1/schedules/{name}",
            handler="delete_schedule",
            summary="Delete a schedule made through the API (returns it)",
            response=ScheduleView,
            errors=("not_found", "read_only", "store_unavailable"),
        ),
        Route(
            method="POST",
            path="/api/v1/schedules/{name}/run",
            handler="run_schedule",
            summary="Submit one run of a schedule now",
            response=ScheduleRun,
            errors=("not_found", "queue_full", "store_unavailable"),
        ),
    )


ROUTES = _routes()
