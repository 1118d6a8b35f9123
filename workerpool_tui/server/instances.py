"""``GET /api/v1/instances``: the cluster's instances, or this process alone outside one;
``GET /api/v1/workers``: the workers of the instance answering."""

from __future__ import annotations

from ..core.engine import Engine
from ..core.instance_view import instance_infos
from ..core.models import rfc3339
from ..core.worker_view import worker_infos
from .schemas import InstanceList, InstanceView, ProcessView, WorkerList, WorkerView


def worker_list(engine: Engine) -> WorkerList:
    now = engine.clock.now()
    views = [
        WorkerView(
            id=w.id,
            state=w.state,
            task_id=w.task_id,
            task_type=w.task_type,
            running_since=rfc3339(w.running_since),
            running_s=None if w.running_since is None else round(now - w.running_since, 3),
            done=w.done,
            failed=w.failed,
        )
        for w in worker_infos(engine.pool)
    ]
    processes = [
        ProcessView(
            slot=p.slot,
            pid=p.pid,
            task_id=p.task_id,
            cpu_pct=p.cpu_pct,
            rss_bytes=p.rss,
            tasks_done=p.tasks_done,
            restarts=p.restarts,
        )
        for p in (engine.procs.infos() if engine.procs is not None else [])
    ]
    return WorkerList(views, engine.store.name if engine.store is not None else None, processes)


async def instance_list(engine: Engine) -> InstanceList:
    infos, cluster = await instance_infos(engine)
    views = [
        InstanceView(
            id=i.id,
            name=i.name,
            host=i.host,
            pid=i.pid,
            version=i.version,
            state=i.state,
            workers=i.workers,
            busy=i.busy,
            min_workers=i.min_workers,
            max_workers=i.max_workers,
            paused=i.paused,
            done=i.done,
            failed=i.failed,
            started_at=rfc3339(i.started_at),
            heartbeat_at=rfc3339(i.heartbeat_at),
            heartbeat_age_s=i.heartbeat_age_s,
            this=i.this,
        )
        for i in infos
    ]
    return InstanceList(views, cluster=cluster)
