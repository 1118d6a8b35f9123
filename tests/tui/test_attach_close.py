"""Quitting an attached dashboard closes its WebSocket with a close frame (1000), which the
real server, spied on through its wsproto connection, receives."""

from __future__ import annotations

from collections.abc import Generator

import anyio
import pytest
from wsproto.connection import Connection
from wsproto.events import CloseConnection, Event

from workerpool_tui.server import websocket

from .attach_harness import attached, serve
from .harness import until

pytestmark = pytest.mark.anyio


class _Spy(Connection):
    """The server's side of each WebSocket, noting the close frames its clients send."""

    codes: list[int] = []
    closed = anyio.Event()

    def events(self) -> Generator[Event, None, None]:
        for event in super().events():
            if isinstance(event, CloseConnection):
                _Spy.codes.append(event.code)
                _Spy.closed.set()
            yield event


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> type[_Spy]:
    monkeypatch.setattr(_Spy, "codes", [])
    monkeypatch.setattr(_Spy, "closed", anyio.Event())
    monkeypatch.setattr(websocket, "Connection", _Spy)
    return _Spy


async def test_quitting_sends_a_close_frame(spy: type[_Spy]) -> None:
    async with serve() as server:
        async with attached(server.address) as (app, _source, pilot):
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running)
        assert app.return_code == 0
        with anyio.fail_after(5):
            await spy.closed.wait()
        assert spy.codes == [1000]
