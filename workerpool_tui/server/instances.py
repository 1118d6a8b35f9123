"""``GET /api/v1/instances``: the cluster's instances, or this process alone outside one;
``GET /api/v1/workers``: the workers of the instance answering."""

from __future__ import annotations

import os
import socket

from .. import __version__
from ..core.engine import Engine
from ..core.models import rfc3339
from ..core.worker_view import worker_infos
from .schemas import InstanceList, InstanceView, WorkerList, WorkerView


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
    return WorkerList(views, engine.store.name if engine.store is not None else None)


async def instance_list(engine: Engine) -> InstanceList:
    if engine.store is None:
        state = engine.pool_state()
        here = InstanceView(
            id="local",
            name=socket.gethostname(),
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            state="running" if engine.accepting else "stopping",
            workers=state.current,
            busy=state.busy,
            min_workers=state.min,
            max_workers=state.max,
            paused=state.paused,
            done=engine.pool.done,
            failed=engine.pool.failed,
            started_at=rfc3339(engine.started_at),
            heartbeat_at=rfc3339(engine.clock.now()),
            heartbeat_age_s=0.0,
            this=True,
        )
        return InstanceList([here], cluster=False)
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
        for i in await engine.instances()
    ]
    return InstanceList(views, cluster=True)
