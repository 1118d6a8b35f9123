"""The attached dashboard against a real server on 127.0.0.1 (same event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from server.server_helpers import make_config, running_server
from textual.pilot import Pilot

from workerpool_tui.client.api import ServerUrl
from workerpool_tui.config import Config
from workerpool_tui.server import ApiServer
from workerpool_tui.tui.attach import AttachedApp
from workerpool_tui.tui.remote import RemoteSource

from .harness import SIZE, until

FAST_BACKOFF = (0.1, 0.4)


def server_config(port: int = 0, **sections: Any) -> Config:
    worker = {"min_workers": 2, "max_workers": 4, "enable_auto_scaling": False}
    worker.update(sections.pop("worker", {}))
    server = {"port": port}
    server.update(sections.pop("server", {}))
    return make_config(server=server, worker=worker, **sections)


@asynccontextmanager
async def serve(cfg: Config | None = None) -> AsyncIterator[ApiServer]:
    async with running_server(cfg or server_config()) as server:
        yield server


@asynccontextmanager
async def attached(
    url: str, token: str | None = None, *, connect: bool = True, **app: Any
) -> AsyncIterator[tuple[AttachedApp, RemoteSource, Pilot[int]]]:
    source = RemoteSource(ServerUrl.parse(url), token, backoff=FAST_BACKOFF, idle_timeout_s=2.0)
    dash = AttachedApp(bridge=source, **app)
    async with dash.run_test(size=SIZE) as pilot:
        if connect:
            await until(pilot, lambda: source.connected and source.snapshots >= 1)
        yield dash, source, pilot
