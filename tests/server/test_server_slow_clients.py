"""Slow clients and request framing on real loopback sockets (#15 §5, §8): a body has a total
deadline and a minimum rate, a request is refused on its head before its body is read, the
connection cap filled by slow clients still lets ``/health`` through, and a request framed
by both ``Content-Length`` and ``Transfer-Encoding`` closes its connection."""

from __future__ import annotations

import anyio
import httpx
import msgspec
import pytest
from server_helpers import (
    TEST_LIMITS,
    make_config,
    read_until_closed,
    running_server,
    wait_until,
)

from workerpool_tui.server import ApiServer
from workerpool_tui.server.http import Phase

pytestmark = pytest.mark.anyio

SLOW_HEAD = (
    b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 10000\r\n\r\n"
)


def error_code(answer: bytes) -> str:
    body = answer.split(b"\r\n\r\n", 1)[1]
    return str(msgspec.json.decode(body)["error"]["code"])


async def trickle(stream: anyio.abc.SocketStream, every_s: float, count: int) -> None:
    """Send one byte of body every ``every_s`` seconds until the server closes."""
    try:
        for _ in range(count):
            await stream.send(b" ")
            await anyio.sleep(every_s)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
        pass


async def test_trickled_body_is_cut_at_its_total_deadline() -> None:
    # Each byte comes well within body_timeout of the last; before the fix every wait got a
    # fresh deadline and the request was held open for as long as the client liked.
    limits = msgspec.structs.replace(TEST_LIMITS, body_timeout_s=0.5)
    async with running_server(limits=limits) as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(SLOW_HEAD)
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(trickle, s, 0.05, 200)
                    answer = await read_until_closed(s)
                    tg.cancel_scope.cancel()
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert error_code(answer) == "request_timeout"


async def test_body_arriving_above_the_minimum_rate_gets_more_time() -> None:
    # 0.2 s base allowance, then 1 s per 10 bytes: 60 bytes over ~0.6 s arrive in time.
    limits = msgspec.structs.replace(
        TEST_LIMITS, body_timeout_s=0.2, body_min_rate=10, body_max_time_s=30.0
    )
    body = b'{"type": "default_task", "payload": {"pad": "' + b"x" * 16 + b'"}}'
    async with running_server(limits=limits) as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(
                b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            with anyio.fail_after(10):
                for i in range(0, len(body), 4):
                    await s.send(body[i : i + 4])
                    await anyio.sleep(0.04)
                answer = await s.receive()
        assert answer.startswith(b"HTTP/1.1 201"), answer


async def test_unauthenticated_request_refused_on_its_head_without_reading_the_body() -> None:
    cfg = make_config(server={"auth_token": "s3cret"})
    limits = msgspec.structs.replace(TEST_LIMITS, body_timeout_s=30.0)
    async with running_server(cfg, limits=limits) as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(SLOW_HEAD)  # no token, and the 10,000 bytes never come
            with anyio.fail_after(5):
                answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 401"), answer
        assert error_code(answer) == "unauthorized"
        assert b"connection: close" in answer.lower()
        assert server.engine.stats().tasks.total == 0


async def test_unknown_path_with_a_body_refused_on_its_head() -> None:
    limits = msgspec.structs.replace(TEST_LIMITS, body_timeout_s=30.0)
    async with running_server(limits=limits) as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(SLOW_HEAD.replace(b"/api/v1/tasks", b"/api/v1/nothing"))
            with anyio.fail_after(5):
                answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 404"), answer
        assert b"connection: close" in answer.lower()


async def test_a_refused_head_without_a_body_keeps_the_connection() -> None:
    async with running_server() as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(b"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            with anyio.fail_after(5):
                while data.count(b"HTTP/1.1 ") < 2:
                    data += await s.receive()
        assert data.startswith(b"HTTP/1.1 404")
        assert b"HTTP/1.1 200" in data


async def _slow_clients(server: ApiServer, count: int) -> list[anyio.abc.SocketStream]:
    streams = []
    for _ in range(count):
        s = await anyio.connect_tcp("127.0.0.1", server.port)
        await s.send(SLOW_HEAD + b"{")
        streams.append(s)
    await wait_until(
        lambda: len(server._open) == count and all(c.phase is Phase.BODY for c in server._open),
    )
    return streams


async def test_health_answers_while_slow_clients_hold_every_connection() -> None:
    # Before the fix the cap, held by clients that send nothing more, made every new
    # connection a 503: /health with it.
    limits = msgspec.structs.replace(
        TEST_LIMITS, max_connections=8, header_timeout_s=30.0, body_timeout_s=30.0
    )
    async with running_server(limits=limits) as server:
        slow = await _slow_clients(server, 8)
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                for _ in range(3):
                    resp = await c.get(f"http://127.0.0.1:{server.port}/health")
                    assert resp.status_code == 200
            # Each new connection made room by cutting the longest-waiting slow one.
            with anyio.fail_after(5):
                answer = await read_until_closed(slow[0])
            assert answer.startswith(b"HTTP/1.1 503"), answer
            assert error_code(answer) == "too_many_connections"
            assert server.connections <= limits.max_connections
        finally:
            for s in slow:
                await s.aclose()


async def test_cap_held_by_requests_being_served_still_refuses() -> None:
    # Connections whose requests are being handled (here: WebSocket sessions) are never cut
    # to make room: past the cap a new connection gets 503.
    limits = msgspec.structs.replace(TEST_LIMITS, max_connections=3)
    async with running_server(limits=limits) as server:
        held = []
        try:
            for _ in range(3):
                s = await anyio.connect_tcp("127.0.0.1", server.port)
                await s.send(
                    b"GET /api/v1/ws/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                )
                with anyio.fail_after(5):
                    assert (await s.receive()).startswith(b"HTTP/1.1 101")
                held.append(s)
            async with await anyio.connect_tcp("127.0.0.1", server.port) as extra:
                await extra.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                with anyio.fail_after(5):
                    answer = await read_until_closed(extra)
            assert answer.startswith(b"HTTP/1.1 503")
            assert error_code(answer) == "too_many_connections"
        finally:
            for s in held:
                await s.aclose()


async def test_content_length_and_chunked_together_closes_after_the_answer() -> None:
    body = b'{"type": "default_task"}'
    async with running_server() as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(
                b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            )
            # A second request on the same connection must never be served.
            await s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            with anyio.fail_after(5):
                answer = await read_until_closed(s)
        # Processed by Transfer-Encoding alone (RFC 9112 §6.1), then closed.
        assert answer.startswith(b"HTTP/1.1 201"), answer
        assert b"connection: close" in answer.lower()
        assert answer.count(b"HTTP/1.1 ") == 1
