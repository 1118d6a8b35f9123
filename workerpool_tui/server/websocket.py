"""One WebSocket client after the upgrade: wsproto on the socket the HTTP connection handed over.

Outgoing bytes go through a bounded per-client buffer that :meth:`WebSocketClient.push`
fills without ever waiting, so the broadcaster (and everyone else) never waits for a slow
client. A writer task folds everything queued into one ``send``. A client whose buffer
overflows gets ``resync`` + a fresh snapshot instead of what it missed; one that overflows
again before its writer has managed a single write since, or whose write stalls past
``write_timeout``, is dropped. Client messages are capped (close 1009); a malformed frame
gets a close with wsproto's code; a silent client is pinged and dropped if it stays silent.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable

import anyio
from anyio.abc import ByteStream, SocketAttribute
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason, FrameProtocol

from .limits import Limits

log = logging.getLogger("workerpool_tui.server")

_framer = FrameProtocol(client=False, extensions=[])
_STREAM_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError)


def frame_text(payload: bytes) -> bytes:
    """One unmasked text frame. Server frames are the same bytes for every client, so a
    message is framed once and the frame is shared."""
    return bytes(_framer.send_data(payload.decode("utf-8"), True))


class WebSocketClient:
    def __init__(
        self,
        stream: ByteStream,
        limits: Limits,
        *,
        resync_frames: Callable[[], bytes],
        initial: bytes = b"",
    ) -> None:
        self.stream = stream
        self.limits = limits
        self.ws = Connection(ConnectionType.SERVER)
        self._resync_frames = resync_frames
        self._queue: list[bytes] = []
        self._queued = 0
        self._wake = anyio.Event()
        self._closing = False
        self._peer_closed = anyio.Event()
        self._resync_pending = False
        self._last_heard = anyio.current_time()
        self._message_bytes = 0
        self._scope: anyio.CancelScope | None = None
        self.resyncs = 0
        self.dropped: str | None = None
        """Why this client was dropped (``None`` while it is fine)."""
        if initial:
            self._append(initial)

    # ------------------------------------------------------------------ feeding (never waits)
    def _append(self, data: bytes) -> None:
        self._queue.append(data)
        self._queued += len(data)
        if not self._wake.is_set():
            self._wake.set()

    def push(self, data: bytes) -> None:
        """Queue already-framed bytes (shared with other clients); never waits."""
        if self._closing:
            return
        # A client with nothing queued is keeping up: it takes a batch of any size.
        if not self._queued or self._queued + len(data) <= self.limits.ws_queue_bytes:
            self._append(data)
            return
        if self._resync_pending:
            self.drop("too slow: fell behind twice without reading")
            return
        self._queue.clear()
        self._queued = 0
        self._resync_pending = True
        self.resyncs += 1
        self._append(self._resync_frames())

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake: queued messages go first, then the close frame."""
        if self._closing and self.ws.state is not ConnectionState.OPEN:
            return
        self._closing = True
        if self.ws.state is ConnectionState.OPEN:
            self._append(self.ws.send(CloseConnection(code=code, reason=reason)))
        else:
            self._wake.set()

    def drop(self, why: str) -> None:
        """Cut the connection now, without a handshake."""
        if self.dropped is None:
            self.dropped = why
            log.info("websocket client dropped: %s", why)
        self._closing = True
        self._queue.clear()
        self._queued = 0
        if self._scope is not None:
            self._scope.cancel()

    @property
    def queued_bytes(self) -> int:
        return self._queued

    # ------------------------------------------------------------------ running
    def _bound_socket_buffer(self) -> None:
        sock = self.stream.extra(SocketAttribute.raw_socket, None)
        if sock is not None and self.limits.ws_socket_send_buffer > 0:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.ws_socket_send_buffer
                )

    async def run(self, data: bytes) -> None:
        """Serve the client until it closes, is closed, or is dropped. ``data`` holds bytes
        the client sent right after its upgrade request."""
        self._bound_socket_buffer()
        try:
            with anyio.CancelScope() as self._scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._reader, data)
                    tg.start_soon(self._pinger)
                    await self._writer()
                    # We flushed our close frame: give the peer a moment to answer it.
                    with anyio.move_on_after(self.limits.ws_close_timeout_s):
                        await self._peer_closed.wait()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _writer(self) -> None:
        limits = self.limits
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            queue = self._queue
            data = queue[0] if len(queue) == 1 else b"".join(queue)
            self._queue = []
            self._queued = 0
            try:
                with anyio.fail_after(
                    limits.ws_close_timeout_s if self._closing else limits.write_timeout_s
                ):
                    await self.stream.send(data)
            except TimeoutError:
                self.drop("write stalled")
                return
            except _STREAM_GONE:
                self._closing = True
                return
            self._resync_pending = False

    async def _reader(self, data: bytes) -> None:
        ws = self.ws
        cap = self.limits.ws_max_message_bytes
        while True:
            if data:
                self._last_heard = anyio.current_time()
                ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, (TextMessage, BytesMessage)):
                    self._message_bytes += len(event.data)
                    if self._message_bytes > cap:
                        self.close(CloseReason.MESSAGE_TOO_BIG, f"message over {cap} bytes")
                        self._stop_reading()
                        return
                    if event.message_finished:
                        self._message_bytes = 0  # client messages carry no commands yet
                elif isinstance(event, Ping):
                    if not self._closing:
                        self._append(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        self._closing = True
                        self._append(ws.send(event.response()))
                    elif ws.state is ConnectionState.OPEN:  # a malformed frame
                        self.close(event.code, event.reason or "protocol error")
                    self._stop_reading()
                    return
                elif isinstance(event, Pong):
                    pass  # _last_heard was already refreshed by the bytes
            try:
                data = await self.stream.receive(self.limits.read_chunk_bytes)
            except (anyio.EndOfStream, *_STREAM_GONE):
                self._closing = True
                self._stop_reading()
                return

    def _stop_reading(self) -> None:
        self._peer_closed.set()
        self._wake.set()

    async def _pinger(self) -> None:
        limits = self.limits
        while not self._closing:
            quiet_until = self._last_heard + limits.ws_ping_interval_s
            now = anyio.current_time()
            if now < quiet_until:
                await anyio.sleep(quiet_until - now)
                continue
            if self.ws.state is not ConnectionState.OPEN:
                return
            pinged_at = now
            self._append(self.ws.send(Ping(payload=b"wp")))
            await anyio.sleep(limits.ws_ping_timeout_s)
            if self._last_heard <= pinged_at and not self._closing:
                self.drop("no answer to ping")
                return
