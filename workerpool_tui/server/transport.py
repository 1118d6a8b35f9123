"""A thinner accepted-socket stream for the asyncio backend.

anyio's own asyncio socket stream re-registers the socket with the selector on every
``receive`` (``resume_reading`` / ``pause_reading``: two ``epoll_ctl`` calls) and adds an
event-loop round trip after every ``send`` (a shielded checkpoint). For a small request and
its answer that is a third of the server's time. :class:`ProtocolStream` is the same
:class:`anyio.abc.SocketStream` contract on an :class:`asyncio.Protocol` that keeps reading
enabled while it buffers at most about ``READ_AHEAD_BYTES``; ``send`` waits only while the
kernel does not take the bytes (write buffer limit 0, as anyio does).

:func:`serve_tcp` accepts on every socket of an anyio listener and hands each connection to
``handler`` in ``task_group``; on another backend it falls back to ``listener.serve``. The
same code runs on the standard loop and on uvloop (``[server] loop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, cast

import anyio
from anyio.abc import ByteStream, Listener, SocketAttribute, SocketStream, TaskGroup

READ_AHEAD_BYTES = 65_536
"""Reading from the socket pauses while this much received data waits to be consumed."""


class _StreamProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.exception: BaseException | None = None
        self.write_paused = False
        self.read_paused = False
        self.read_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport has every method of asyncio.Transport but is no subclass.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(0)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= READ_AHEAD_BYTES and not self.read_paused:
            self.read_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return True  # keep the transport: the answer may still have to be sent

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if exc is not None:
            self.exception = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        waiter = self.read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class ProtocolStream(SocketStream):
    """An accepted TCP connection; see the module docstring."""

    def __init__(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._closed = False

    @property
    def _raw_socket(self) -> socket.socket:
        sock: socket.socket = self._transport.get_extra_info("socket")
        return sock

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        if protocol.exception is not None:
            raise anyio.BrokenResourceError from protocol.exception
        if protocol.lost:
            raise anyio.BrokenResourceError

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        protocol = self._protocol
        if protocol.chunks:
            # Data was already waiting (a pipelining client): let other tasks run first.
            await anyio.lowlevel.checkpoint()
        else:
            if protocol.read_waiter is not None:
                raise anyio.BusyResourceError("reading from")
            while not protocol.chunks:
                if protocol.eof:
                    raise anyio.EndOfStream
                if self._closed or protocol.lost or protocol.exception is not None:
                    self._check_open()  # raises
                protocol.read_waiter = waiter = self._loop.create_future()
                try:
                    await waiter
                finally:
                    protocol.read_waiter = None
        if self._closed:
            raise anyio.ClosedResourceError
        chunk = protocol.chunks.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            protocol.chunks.appendleft(rest)
        protocol.buffered -= len(chunk)
        if protocol.read_paused and protocol.buffered < READ_AHEAD_BYTES:
            protocol.read_paused = False
            self._transport.resume_reading()
        return chunk

    async def send(self, item: bytes) -> None:
        protocol = self._protocol
        if protocol.write_paused:
            await self._drain()
        if self._closed or protocol.lost or protocol.exception is not None:
            self._check_open()  # raises
        self._transport.write(item)
        if protocol.write_paused:
            # The kernel did not take everything: wait until it has.
            await self._drain()
            self._check_open()

    async def _drain(self) -> None:
        protocol = self._protocol
        if protocol.drain_waiter is not None:
            raise anyio.BusyResourceError("writing to")
        while protocol.write_paused and not protocol.lost:
            protocol.drain_waiter = waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                protocol.drain_waiter = None

    async def send_eof(self) -> None:
        with contextlib.suppress(OSError):
            self._transport.write_eof()

    async def aclose(self) -> None:
        self._closed = True
        self._transport.abort()
        await anyio.lowlevel.checkpoint()


Handler = Callable[[ByteStream], Coroutine[Any, Any, None]]


async def serve_tcp(
    listener: Listener[ByteStream], handler: Handler, task_group: TaskGroup
) -> None:
    """Accept connections until cancelled; each one runs ``handler`` in ``task_group``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not the asyncio backend
        await listener.serve(handler, task_group=task_group)
        return
    listeners = getattr(listener, "listeners", [listener])
    async with anyio.create_task_group() as tg:
        for sub in listeners:
            tg.start_soon(_accept_loop, sub.extra(SocketAttribute.raw_socket), handler, task_group)


async def _accept_loop(sock: socket.socket, handler: Handler, task_group: TaskGroup) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            client, _ = await loop.sock_accept(sock)
        except asyncio.CancelledError:
            # A cancelled sock_accept can leave its reader behind (bpo-41317).
            with contextlib.suppress(ValueError, NotImplementedError):
                loop.remove_reader(sock)
            raise
        except OSError:
            if sock.fileno() < 0:
                raise anyio.ClosedResourceError from None
            # EMFILE, ECONNABORTED ...: the listener itself is fine; try again shortly.
            await anyio.sleep(0.01)
            continue
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport, protocol = await loop.connect_accepted_socket(_StreamProtocol, client)
        except OSError:
            client.close()
            continue
        task_group.start_soon(handler, ProtocolStream(transport, protocol))
