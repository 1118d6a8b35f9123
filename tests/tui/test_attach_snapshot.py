"""A snapshot baseline of the attached dashboard's main screen.

The server is the snapshot factory's motionless engine (fixed ids, a clock that never
ticks, never started: nothing moves) served on a free loopback port by a real
``ApiServer`` in a thread of its own (the snapshot plugin runs the app on its own loop).
The dashboard's clock is frozen at the same instant, so ages and charts are fixed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal
from server.server_helpers import TEST_LIMITS
from textual.pilot import Pilot

from workerpool_tui.client.api import ServerUrl
from workerpool_tui.config import load_config
from workerpool_tui.core import Engine
from workerpool_tui.server import ApiServer
from workerpool_tui.tui.attach import AttachedApp
from workerpool_tui.tui.remote import RemoteSource
from workerpool_tui.tui.widgets.task_table import TaskTable

from .factory import T0, seeded_engine
from .harness import until

SHOWN_URL = "http://127.0.0.1:8080"
"""The URL the header and the stats bar show; the server listens on a free port (a fixed
one could be taken by another test session on this machine)."""
SIZE = (160, 48)


@asynccontextmanager
async def _serving(engine: Engine) -> AsyncIterator[int]:
    cfg = load_config(None, overrides={"server": {"host": "127.0.0.1", "port": 0}})
    async with anyio.create_task_group() as tg:
        server = ApiServer(engine, cfg.server, limits=TEST_LIMITS)
        await tg.start(server.run)
        try:
            yield int(server.address.rsplit(":", 1)[1])
        finally:
            server.begin_shutdown()
            with anyio.CancelScope(shield=True):
                await server.close_websockets()
            server.stop()


@contextmanager
def _served_seeded_engine() -> Iterator[int]:
    """The seeded engine served in a thread of its own; yields the port."""
    engine, _ = seeded_engine()
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_serving(engine)) as port,
    ):
        yield port


def _attached_app(port: int) -> tuple[AttachedApp, RemoteSource]:
    # Connects to ``port``, shows SHOWN_URL (ServerUrl.url is what the dashboard prints).
    url = ServerUrl(url=SHOWN_URL, host="127.0.0.1", port=port, prefix="")
    source = RemoteSource(url, clock=lambda: T0)
    return AttachedApp(bridge=source, freeze_timing=True), source


def test_attached_main_screen(snap_compare: Any) -> None:
    with _served_seeded_engine() as port:
        app, source = _attached_app(port)

        async def connected(pilot: Pilot[Any]) -> None:
            table = app.query_one(TaskTable)
            await until(pilot, lambda: source.connected and source.snapshots >= 1)
            await until(pilot, lambda: table.row_count == 10 and app.sub_title.startswith("con"))
            await until(pilot, lambda: source.stats().tasks.total == 10)
            await pilot.pause()

        assert snap_compare(app, terminal_size=SIZE, run_before=connected)
