"""The attached dashboard's WebSocket client: ``GET /api/v1/ws/tasks`` on an anyio socket,
framed by wsproto, decoded into the server's own message structs.

The async twin of :class:`~workerpool_tui.client.stream.EventStream` (which blocks, for
``watch``); the handshake request and the meaning of a refusal are shared with it
(:func:`~workerpool_tui.client.stream.handshake_request`,
:func:`~workerpool_tui.client.stream.refusal`). Every wait is bounded and cancellable:
the connection and handshake by ``connect_timeout_s``; silence by ``idle_timeout_s``
(the server sends stats every second: after one silent period we ping, after a second
one the stream is lost); leaving the stream (quitting, or reopening it) says goodbye with a
close frame (1000) and waits at most ``CLOSE_TIMEOUT_S`` for the server's answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import anyio.abc
import msgspec
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..client.api import ApiError, ServerUrl, describe_oserror
from ..client.stream import MAX_MESSAGE_BYTES, StreamLost, handshake_request, refusal
from ..server.schemas import WsMessage

CONNECT_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 5.0
"""The server sends stats every second: this much silence means trouble."""
CLOSE_TIMEOUT_S = 1.0
"""Leaving: how long the server has to answer our close frame (quitting waits this at most)."""
_RECV_BYTES = 1 << 16
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
_logger = logging.getLogger("workerpool_tui.tui")
_decode = msgspec.json.Decoder(WsMessage).decode


class Refused(Exception):
    """The server answered the handshake with an error (``status`` 401/403: the token)."""

    def __init__(self, error: ApiError | str, status: int) -> None:
        super().__init__(str(error))
        self.status = status


class WsStream:
    """One open stream; iterate :meth:`messages` until it ends or raises StreamLost."""

    def __init__(self, sock: anyio.abc.SocketStream, ws: WSConnection, idle_s: float) -> None:
        self._sock = sock
        self._ws = ws
        self._idle_s = idle_s
        self.close_code: int | None = None

    async def _send(self, event: Any) -> None:
        try:
            await self._sock.send(self._ws.send(event))
        except LocalProtocolError as exc:
            raise StreamLost(str(exc)) from None
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise StreamLost(describe_oserror(exc)) from None

    async def _receive(self) -> bytes:
        for attempt in (1, 2):
            with anyio.move_on_after(self._idle_s):
                try:
                    data = await self._sock.receive(_RECV_BYTES)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    raise StreamLost("the server closed the connection") from None
                return data
            if attempt == 1:
                await self._send(Ping(payload=b"workerpool-tui"))
        raise StreamLost("the server stopped answering")

    async def messages(self) -> AsyncIterator[WsMessage]:
        """Each server message until the server closes the stream."""
        parts: list[str] = []
        size = 0
        while True:
            # (The first pass takes what came with the handshake's answer.)
            try:
                events = list(self._ws.events())
            except RemoteProtocolError as exc:
                raise StreamLost(f"protocol error from the server: {exc}") from None
            for event in events:
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > MAX_MESSAGE_BYTES:
                        raise StreamLost("a message from the server was too large")
                    if event.message_finished:
                        text, parts, size = "".join(parts), [], 0
                        try:
                            message = _decode(text)
                        except msgspec.DecodeError as exc:
                            _logger.debug("skipped a message: %s", exc)
                            continue  # a message of a newer server: skip it
                        yield message
                elif isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    with suppress(StreamLost):
                        await self._send(event.response())
                    return
            self._ws.receive_data(await self._receive())

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """The closing handshake from our side: a close frame (1000, a normal closure),
        then the server's answer, read until it comes, the server hangs up or ``timeout_s``
        passes. Shielded: it runs when quitting cancels the stream's reader."""
        ws = self._ws
        if ws.state is not ConnectionState.OPEN:
            return  # the server closed first (answered in messages()) or it broke
        with anyio.CancelScope(shield=True), anyio.move_on_after(timeout_s):
            try:
                await self._send(CloseConnection(code=CloseReason.NORMAL_CLOSURE))
                while self._ws.state is not ConnectionState.CLOSED:
                    ws.receive_data(await self._sock.receive(_RECV_BYTES))
                    for _event in ws.events():
                        pass  # messages still in flight, then the server's close frame
            except (StreamLost, RemoteProtocolError, anyio.EndOfStream, *_GONE):
                pass  # broken, or the server hung up without answering: nothing to wait for


@asynccontextmanager
async def open_stream(
    server: ServerUrl,
    token: str | None,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> AsyncIterator[WsStream]:
    """Connect and upgrade; :class:`Refused` when the server says no, ``StreamLost``
    (or ``OSError``) when it cannot be reached."""
    ws = WSConnection(ConnectionType.CLIENT)
    try:
        with anyio.fail_after(connect_timeout_s):
            sock = await anyio.connect_tcp(server.host, server.port)
    except TimeoutError:
        raise StreamLost("timed out") from None
    except OSError as exc:  # anyio's "All connection attempts failed" has the cause
        raise StreamLost(describe_oserror(exc.__cause__ or exc)) from None
    async with sock:
        stream = WsStream(sock, ws, idle_timeout_s)
        try:
            with anyio.fail_after(connect_timeout_s):
                await stream._send(handshake_request(server, token))
                await _handshake(stream)
        except TimeoutError:
            raise StreamLost("the handshake timed out") from None
        try:
            yield stream
        finally:
            await stream.close()


async def _handshake(stream: WsStream) -> None:
    reject: RejectConnection | None = None
    body = bytearray()
    while True:
        stream._ws.receive_data(await stream._receive())
        for event in _events(stream._ws):
            if isinstance(event, AcceptConnection):
                return  # (what followed the answer stays in wsproto for messages())
            if isinstance(event, RejectConnection):
                reject = event
                if not event.has_body:
                    raise Refused(str(refusal(reject.status_code, b"")), reject.status_code)
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished and reject is not None:
                    why = refusal(reject.status_code, bytes(body))
                    raise Refused(str(why), reject.status_code)


def _events(ws: WSConnection) -> Iterator[Any]:
    """wsproto's events, taken one at a time (the caller may stop early)."""
    try:
        yield from ws.events()
    except RemoteProtocolError:
        raise StreamLost("the answer to the handshake was not WebSocket over HTTP") from None
