"""``/api/v1/schedules``: recurring schedules (``core/schedules.py``), a mixin of ``Api``
so that the route table names its handlers like the others."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from ..config import parse_duration
from ..core.admission import MAX_RETRIES_MAX, PRIORITY_MAX, PRIORITY_MIN
from ..core.engine import Engine
from ..core.errors import InvalidRequest
from ..core.schedules import ScheduleSpec, ScheduleView
from .request import Request
from .responses import Response, json_response

_T = TypeVar("_T")


class ScheduleRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/v1/schedules``: ``cron`` or ``every`` (seconds or a duration)."""

    name: str
    type: str
    cron: str | None = None
    every: float | str | None = None
    timezone: str = "UTC"
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: Annotated[int, msgspec.Meta(ge=PRIORITY_MIN, le=PRIORITY_MAX)] = 0
    timeout: float | str | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=MAX_RETRIES_MAX)] | None = None
    paused: bool = False
    overlap: Literal["skip", "allow"] = "skip"
    catch_up: Literal["one", "none"] = "one"


class SchedulePatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /api/v1/schedules/{name}``: the fields to change (absent ones stay)."""

    type: str | None = None
    cron: str | None = None
    every: float | str | None = None
    timezone: str | None = None
    payload: dict[str, Any] | None = None
    priority: Annotated[int, msgspec.Meta(ge=PRIORITY_MIN, le=PRIORITY_MAX)] | None = None
    timeout: float | str | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=MAX_RETRIES_MAX)] | None = None
    paused: bool | None = None
    overlap: Literal["skip", "allow"] | None = None
    catch_up: Literal["one", "none"] | None = None


class ScheduleList(msgspec.Struct, frozen=True):
    schedules: list[ScheduleView]


class ScheduleRun(msgspec.Struct, frozen=True):
    """``POST /api/v1/schedules/{name}/run``: the task submitted (``null``: refused,
    see the log)."""

    task_id: str | None
    schedule: ScheduleView


def _seconds(name: str, value: float | str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None


class ScheduleHandlers:
    engine: Engine

    def _decode(self, request: Request, type_: type[_T]) -> _T:
        raise NotImplementedError  # Api's

    async def list_schedules(self, request: Request) -> Response:
        sched = self.engine.scheduler
        views = [await sched.view(s) for s in sorted(sched.schedules.values(), key=_name)]
        return json_response(200, ScheduleList(views))

    async def create_schedule(self, request: Request) -> Response:
        req = self._decode(request, ScheduleRequest)
        spec = ScheduleSpec(
            name=req.name,
            type=req.type,
            cron=req.cron,
            every=_seconds("every", req.every),
            timezone=req.timezone,
            payload=req.payload,
            priority=req.priority,
            timeout=_seconds("timeout", req.timeout),
            max_retries=req.max_retries,
            paused=req.paused,
            overlap=req.overlap,
            catch_up=req.catch_up,
        )
        sched = self.engine.scheduler
        s = await sched.add(spec)
        return json_response(
            201,
            await sched.view(s),
            headers=[(b"location", f"/api/v1/schedules/{spec.name}".encode())],
        )

    async def get_schedule(self, request: Request, name: str) -> Response:
        sched = self.engine.scheduler
        return json_response(200, await sched.view(sched.get(name)))

    async def patch_schedule(self, request: Request, name: str) -> Response:
        patch = self._decode(request, SchedulePatch)
        sched = self.engine.scheduler
        old = sched.get(name).spec
        changes: dict[str, Any] = {
            f: getattr(patch, f)
            for f in patch.__struct_fields__
            if getattr(patch, f) is not None and f not in ("every", "timeout")
        }
        if patch.every is not None:
            changes["every"] = _seconds("every", patch.every)
            changes["cron"] = None
        elif patch.cron is not None:
            changes["every"] = None
        if patch.timeout is not None:
            changes["timeout"] = _seconds("timeout", patch.timeout)
        s = await sched.replace(name, msgspec.structs.replace(old, **changes))
        return json_response(200, await sched.view(s))

    async def delete_schedule(self, request: Request, name: str) -> Response:
        sched = self.engine.scheduler
        view = await sched.view(sched.get(name))
        await sched.delete(name)
        return json_response(200, view)

    async def run_schedule(self, request: Request, name: str) -> Response:
        sched = self.engine.scheduler
        task_id = await sched.run_now(name)
        return json_response(200, ScheduleRun(task_id, await sched.view(sched.get(name))))


def _name(s: Any) -> str:
    return str(s.spec.name)
