"""``GET /api/v1/instances``: the cluster's instances, or this process alone outside one."""

from __future__ import annotations

import os
import socket

from .. import __version__
from ..core.engine import Engine
from ..core.models import rfc3339
from .schemas import InstanceList, InstanceView


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
