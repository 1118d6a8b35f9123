"""The attached dashboard's HTTP side: every action and every read that is not in the
WebSocket stream, on the event loop (:mod:`.remote_request`: why not the blocking client
in a worker thread).

Each call opens its own connection (calls may overlap; a loopback connect costs well
under a millisecond; and a reused keep-alive connection could meet a server that closed
it, where a ``POST`` must never be sent twice), is bounded by :data:`CALL_TIMEOUT_S`, and
is abandoned at once when the caller is cancelled (quitting never waits for a slow
server). Whatever goes wrong becomes an
:class:`~workerpool_tui.core.EngineError` with one readable sentence: the dashboard
shows it as a notification, as it does the in-process engine's refusals.

Also here: the wire forms (RFC 3339 times, JSON objects) turned back into the values the
dashboard reads (tasks, workers, instances, schedules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import msgspec

from ..client.api import (
    ApiError,
    ServerUrl,
    Unreachable,
    Unrecognised,
    decode_response,
    task_path,
)
from ..core import EngineError, Task, TaskSpec
from ..core.engine import EngineStats, PoolState
from ..core.index import TaskCounts
from ..core.instance_view import InstanceInfo
from ..core.models import TaskView, rfc3339
from ..core.procpool.pool import ProcessInfo
from ..core.schedules import Schedule, ScheduleSpec
from ..core.stats import BusStats, Latency, Percentiles, QueueStats, Throughput
from ..core.worker_view import WorkerInfo
from .remote_request import request
from .view_model import TypeInfo

CALL_TIMEOUT_S = 10.0
BATCH_MAX = 1000
TOKEN_HINT = (
    "the server refused the token: pass --token, or set WORKERPOOL_TOKEN or server.auth_token"
)


DEFAULT_CAP = 1000
"""The pool bound the resize form checks when the server's document does not say."""


class RemoteError(EngineError):
    """The attached server refused, or could not be reached."""

    code = "remote_error"


def epoch(ts: str | None) -> float | None:
    """RFC 3339 (as the API sends it) to epoch seconds."""
    return None if ts is None else datetime.fromisoformat(ts).timestamp()


def task_from_view(v: TaskView) -> Task:
    """A wire task as the dashboard's widgets read it; ``seq`` (the age order) is its
    creation time in microseconds."""
    created = epoch(v.created_at) or 0.0
    task = Task(
        id=v.id,
        type=v.type,
        payload=v.payload,
        status=v.status,
        priority=v.priority,
        progress=v.progress,
        message=v.message,
        error=v.error,
        attempts=v.attempts,
        max_retries=v.max_retries,
        timeout_s=v.timeout_s,
        created_at=created,
        started_at=epoch(v.started_at),
        finished_at=epoch(v.finished_at),
        worker=v.worker,
        retry_of=v.retry_of,
        seq=int(created * 1_000_000),
        run_at=epoch(v.run_at),
        instance=v.instance,
        depends_on=tuple(v.depends_on) or None,
        unique_key=v.unique_key,
    )
    if v.result is not None:
        task.result = v.result
    for line in v.logs:
        task.add_log(line)
    return task


def spec_body(spec: TaskSpec) -> dict[str, Any]:
    """``POST /api/v1/tasks``' body for a spec of the submit form."""
    body: dict[str, Any] = {"type": spec.type, "payload": spec.payload}
    if spec.priority is not None:
        body["priority"] = spec.priority
    if spec.timeout_s is not None:
        body["timeout"] = spec.timeout_s
    if spec.max_retries is not None:
        body["max_retries"] = spec.max_retries
    if spec.run_at is not None:
        body["run_at"] = rfc3339(spec.run_at)
    if spec.depends_on:
        body["depends_on"] = list(spec.depends_on)
    if spec.unique_key is not None:
        body["unique_key"] = spec.unique_key
        if spec.unique_for is not None:
            body["unique_for"] = spec.unique_for
        body["on_duplicate"] = spec.on_duplicate
    return body


def worker_info(w: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=int(w["id"]),
        state=str(w["state"]),
        task_id=w.get("task_id"),
        task_type=w.get("task_type"),
        running_since=epoch(w.get("running_since")),
        done=int(w.get("done", 0)),
        failed=int(w.get("failed", 0)),
    )


def process_info(p: dict[str, Any]) -> ProcessInfo:
    return ProcessInfo(
        slot=int(p["slot"]),
        pid=int(p["pid"]),
        task_id=p.get("task_id"),
        cpu_pct=float(p.get("cpu_pct", 0.0)),
        rss=int(p.get("rss_bytes", 0)),
        tasks_done=int(p.get("tasks_done", 0)),
        restarts=int(p.get("restarts", 0)),
    )


def instance_info(i: dict[str, Any]) -> InstanceInfo:
    fields = {f: i[f] for f in InstanceInfo.__struct_fields__ if f in i}
    fields["started_at"] = epoch(i.get("started_at")) or 0.0
    fields["heartbeat_at"] = epoch(i.get("heartbeat_at")) or 0.0
    return msgspec.convert(fields, InstanceInfo)


class RemoteApi:
    """Bounded, cancellable HTTP calls against the attached server, on the event loop
    (:mod:`.remote_request`)."""

    def __init__(
        self, server: ServerUrl, token: str | None, *, timeout_s: float = CALL_TIMEOUT_S
    ) -> None:
        self.server = server
        self.token = token
        self.timeout_s = timeout_s

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        query: dict[str, str | int] | None = None,
        expect: tuple[str, ...] = (),
    ) -> Any:
        target = self.server.prefix + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else msgspec.json.encode(body)
        try:
            with anyio.fail_after(self.timeout_s):
                status, raw = await request(self.server, self.token, method, target, data)
            return decode_response(status, "", raw, expect)
        except Unrecognised as odd:
            raise RemoteError(
                f"{method} {path}: {odd.what} (is {self.server.url} a workerpool server?)"
            ) from None
        except ApiError as exc:
            if exc.status in (401, 403) and exc.code != "forbidden_origin":
                raise RemoteError(TOKEN_HINT) from None
            raise RemoteError(exc.message) from None
        except Unreachable as exc:
            raise RemoteError(str(exc)) from None
        except TimeoutError:
            raise RemoteError(
                f"{self.server.url} did not answer within {self.timeout_s:g}s"
            ) from None

    async def task(self, method: str, path: str) -> Task:
        data = await self.call(method, path, expect=("id", "status"))
        return task_from_view(msgspec.convert(data, TaskView))

    async def submit(self, spec: TaskSpec, count: int) -> list[Task]:
        body = spec_body(spec)
        if count == 1:
            data = await self.call("POST", "/api/v1/tasks", body, expect=("id",))
            return [task_from_view(msgspec.convert(data, TaskView))]
        out: list[Task] = []
        left = count
        while left > 0:
            n = min(left, BATCH_MAX)
            data = await self.call(
                "POST", "/api/v1/tasks/batch", {"tasks": [body] * n}, expect=("tasks",)
            )
            out += [task_from_view(msgspec.convert(t, TaskView)) for t in data["tasks"]]
            left -= n
        return out

    async def cancel(self, task_id: str) -> Task:
        return await self.task("DELETE", task_path(task_id))

    async def retry(self, task_id: str) -> Task:
        return await self.task("POST", task_path(task_id) + "/retry")


def empty_stats() -> EngineStats:
    """What the stats bar shows before the first answer."""
    zero = Percentiles(0.0, 0.0, 0.0)
    return EngineStats(
        tasks=TaskCounts(0, 0, 0, 0, 0, 0),
        queue=QueueStats(0, 0),
        workers=PoolState(0, 0, 0, 0, 0, False, False),
        throughput=Throughput(0.0, 0.0, 60, []),
        latency=Latency(zero, zero, 0.0, 0.0),
        bus=BusStats(0, 0, 0, 0),
        scaling=[],
        uptime_s=0.0,
    )


def pool_cap(document: dict[str, Any]) -> int:
    """``task.max_concurrent_tasks`` as ``/openapi.json`` bounds ``PoolPatch.max_workers``."""
    try:
        prop = document["components"]["schemas"]["PoolPatch"]["properties"]["max_workers"]
        for option in prop.get("anyOf", [prop]):
            if "maximum" in option:
                return int(option["maximum"])
    except (KeyError, TypeError, ValueError):
        pass
    return DEFAULT_CAP


def type_info(t: dict[str, Any]) -> TypeInfo:
    parts = ["process"] if t.get("isolation") == "process" else []
    if t.get("concurrency"):
        parts.append(f"running {t.get('running', 0)}/{t['concurrency']}")
    if t.get("rate_limit"):
        holding = " (holding tasks back)" if t.get("rate_limited") else ""
        parts.append(f"rate {t['rate_limit']}{holding}")
    if t.get("paused"):
        parts.append("paused")
    if t.get("held"):
        parts.append(f"{t['held']} waiting")
    return TypeInfo(
        str(t["name"]),
        str(t.get("description", "")),
        t.get("payload_schema"),
        " · ".join(parts),
        priority=t.get("priority"),  # None: [task]'s default, which the API does not state
        timeout_s=t.get("timeout"),
        max_retries=t.get("max_retries"),
    )


_SPEC_FIELDS = ScheduleSpec.__struct_fields__


def schedule_from_view(view: dict[str, Any]) -> tuple[Schedule, str | None]:
    spec = msgspec.convert({k: v for k, v in view.items() if k in _SPEC_FIELDS}, ScheduleSpec)
    s = Schedule(spec, str(view.get("source", "api")))
    s.next_run = epoch(view.get("next_run"))
    s.last_run = epoch(view.get("last_run"))
    s.last_task_id = view.get("last_task_id")
    return s, view.get("last_status")


def _schedule_path(name: str) -> str:
    return "/api/v1/schedules/" + quote(name, safe="")


class RemoteSchedules:
    """The Schedules screen's operations over ``/api/v1/schedules``."""

    def __init__(self, api: RemoteApi) -> None:
        self.api = api

    async def rows(self) -> list[tuple[Schedule, str | None]]:
        data = await self.api.call("GET", "/api/v1/schedules", expect=("schedules",))
        rows = [schedule_from_view(v) for v in data["schedules"]]
        return sorted(rows, key=lambda pair: pair[0].spec.name)

    async def add(self, spec: ScheduleSpec) -> None:
        await self.api.call("POST", "/api/v1/schedules", msgspec.to_builtins(spec))

    async def replace(self, name: str, spec: ScheduleSpec) -> None:
        # PATCH changes the fields given: every field of the spec but its name (and the
        # rule it does not use).
        body = {k: v for k, v in msgspec.to_builtins(spec).items() if k != "name" and v is not None}
        await self.api.call("PATCH", _schedule_path(name), body)

    async def delete(self, name: str) -> None:
        await self.api.call("DELETE", _schedule_path(name))

    async def run_now(self, name: str) -> str | None:
        data = await self.api.call("POST", _schedule_path(name) + "/run")
        task_id = data.get("task_id")
        return None if task_id is None else str(task_id)
