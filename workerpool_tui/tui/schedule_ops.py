"""The Schedules screen's :class:`~.source.ScheduleOps`, twice: the engine's own scheduler
in-process (:class:`SchedulerOps`), and ``/api/v1/schedules`` of an attached server
(:class:`RemoteSchedules`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from ..core.schedules import Schedule, Scheduler, ScheduleSpec
from .remote_http import RemoteApi, epoch

_SPEC_FIELDS = ScheduleSpec.__struct_fields__


def schedule_from_view(view: dict[str, Any]) -> tuple[Schedule, str | None]:
    spec = msgspec.convert({k: v for k, v in view.items() if k in _SPEC_FIELDS}, ScheduleSpec)
    s = Schedule(spec, str(view.get("source", "api")))
    s.next_run = epoch(view.get("next_run"))
    s.last_run = epoch(view.get("last_run"))
    s.last_task_id = view.get("last_task_id")
    return s, view.get("last_status")


class SchedulerOps:
    """The Schedules screen's operations on the engine's own scheduler."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    async def rows(self) -> list[tuple[Schedule, str | None]]:
        rows = sorted(self.scheduler.schedules.values(), key=lambda s: s.spec.name)
        out: list[tuple[Schedule, str | None]] = []
        for s in rows:
            status = None if s.last_task_id is None else (await self.scheduler.view(s)).last_status
            out.append((s, status))
        return out

    async def add(self, spec: ScheduleSpec) -> None:
        await self.scheduler.add(spec)

    async def replace(self, name: str, spec: ScheduleSpec) -> None:
        await self.scheduler.replace(name, spec)

    async def delete(self, name: str) -> None:
        await self.scheduler.delete(name)

    async def run_now(self, name: str) -> str | None:
        return await self.scheduler.run_now(name)


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
