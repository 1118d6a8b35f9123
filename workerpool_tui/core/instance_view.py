"""The instances an engine belongs to: the read behind ``GET /api/v1/instances`` and the
dashboard's Instances screen.

In cluster mode the shared store lists every instance from its heartbeat rows; outside
it the engine is an instance of its own, described from its pool.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import msgspec

from .. import __version__

if TYPE_CHECKING:
    from .engine import Engine


class InstanceInfo(msgspec.Struct, frozen=True):
    """One instance of the cluster (or this process alone), as last heard of."""

    id: str
    name: str
    host: str
    pid: int
    version: str
    state: str
    """running, stopping, stopped, dead, or unresponsive (running, heartbeat past the lease)."""
    workers: int
    busy: int
    min_workers: int
    max_workers: int
    paused: bool
    done: int
    failed: int
    started_at: float
    heartbeat_at: float
    heartbeat_age_s: float
    this: bool
    """The instance asking."""


async def instance_infos(engine: Engine) -> tuple[list[InstanceInfo], bool]:
    """``(instances, cluster)``: the cluster's instances (``cluster`` True), or only this
    process (``cluster`` False) without a shared store."""
    if engine.store is not None:
        return await engine.store.instances(), True
    state = engine.pool_state()
    now = engine.clock.now()
    host = socket.gethostname()
    here = InstanceInfo(
        id="local",
        name=host,
        host=host,
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
        started_at=engine.started_at,
        heartbeat_at=now,
        heartbeat_age_s=0.0,
        this=True,
    )
    return [here], False
