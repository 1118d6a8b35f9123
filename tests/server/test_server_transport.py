"""The accepted-socket stream (``server/transport.py``) on real loopback sockets: read-ahead
that pauses and resumes, a client that stops reading, a half-closed client."""

from __future__ import annotations

import socket

import anyio
import msgspec
import pytest
from server_helpers import TEST_LIMITS, ResponseReader, read_until_closed, running_server

from workerpool_tui.server.transport import READ_AHEAD_BYTES

pytestmark = pytest.mark.anyio

HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def test_body_larger_than_read_ahead_then_keep_alive() -> None:
    size = READ_AHEAD_BYTES * 5
    limits = msgspec.structs.replace(TEST_LIMITS, max_body_bytes=size * 2)
    async with (
        running_server(limits=limits) as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as s,
    ):
        head = b"POST /api/v1/tasks HTTP/1.1\r\nHost: [::1]\r\nContent-Length: %d\r\n\r\n" % size
        await s.send(head + b"x" * size)  # no Content-Type: read whole, then 415
        reader = ResponseReader(s)
        with anyio.fail_after(5):
            first = await reader.next()
            await s.send(HEALTH)
            second = await reader.next()
        assert first.startswith(b"HTTP/1.1 415")
        assert second.startswith(b"HTTP/1.1 200")


async def test_client_reading_late_gets_every_pipelined_answer() -> None:
    count = 1000
    async with (
        running_server() as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as s,
    ):
        # A small receive buffer: the answers back up in the server (its writes may wait).
        s.extra(anyio.abc.SocketAttribute.raw_socket).setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )
        with anyio.fail_after(10):
            await s.send(HEALTH * count)
            reader = ResponseReader(s)
            answers = [await reader.next() for _ in range(count)]
            await s.send(HEALTH)
            last = await reader.next()
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
        assert last.startswith(b"HTTP/1.1 200")


async def test_half_closed_client_still_gets_its_answer() -> None:
    async with (
        running_server() as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as s,
    ):
        await s.send(HEALTH)
        await s.send_eof()
        with anyio.fail_after(5):
            answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.count(b"HTTP/1.1") == 1
