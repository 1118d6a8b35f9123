"""The Schedules screen's :class:`~.source.ScheduleOps` in-process: the engine's own
scheduler (attached to a server: :class:`~.remote_http.RemoteSchedules`)."""

from __future__ import annotations

from ..core.schedules import Schedule, Scheduler, ScheduleSpec


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
