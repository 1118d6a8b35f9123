"""Limits and hostile input on raw loopback sockets: nothing a client sends can crash the
server or stall other clients."""

from __future__ import annotations

import contextlib

import anyio
import httpx
import msgspec
import pytest
from server_helpers import (
    TEST_LIMITS,
    ResponseReader,
    make_config,
    read_response,
    read_until_closed,
    running_server,
    wait_until,
)

from workerpool_tui.server import ApiServer

pytestmark = pytest.mark.anyio


async def raw(server: ApiServer) -> anyio.abc.SocketStream:
    return await anyio.connect_tcp("127.0.0.1", server.port)


def error_code(answer: bytes) -> str:
    body = answer.split(b"\r\n\r\n", 1)[1]
    return str(msgspec.json.decode(body)["error"]["code"])


async def health_ok(port: int) -> None:
    async with httpx.AsyncClient(timeout=5) as c:
        assert (await c.get(f"http://127.0.0.1:{port}/health")).status_code == 200


async def test_declared_oversize_body_refused_before_reading() -> None:
    async with running_server() as server, await raw(server) as s:
        size = TEST_LIMITS.max_body_bytes + 1
        # Only the head is sent: the answer must come without the body ever arriving.
        await s.send(
            b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        with anyio.fail_after(5):
            answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 413")
        assert error_code(answer) == "body_too_large"
        assert b"connection: close" in answer.lower()


async def test_chunked_oversize_body_refused() -> None:
    async with running_server() as server, await raw(server) as s:
        chunk = b"x" * 32768
        await s.send(
            b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        with anyio.fail_after(5):
            for _ in range(3):
                await s.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 413")


async def test_oversize_body_with_httpx() -> None:
    async with running_server() as server, httpx.AsyncClient(timeout=5) as c:
        resp = await c.post(
            f"http://127.0.0.1:{server.port}/api/v1/tasks",
            json={"type": "default_task", "payload": {"blob": "x" * 100_000}},
        )
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "body_too_large"
        await health_ok(server.port)


async def test_header_flood_431() -> None:
    async with running_server() as server, await raw(server) as s:
        flood = b"".join(b"X-Flood-%d: %s\r\n" % (i, b"y" * 100) for i in range(400))
        with anyio.fail_after(5):
            with contextlib.suppress(anyio.BrokenResourceError, ConnectionResetError):
                await s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + flood + b"\r\n")
            answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 431")
        assert error_code(answer) == "headers_too_large"
        await health_ok(server.port)


async def test_garbage_bytes_400_and_close() -> None:
    async with running_server() as server:
        for garbage in (
            b"\x00\xff\xfe garbage\r\n\r\n",
            b"HELLO\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
        ):
            async with await raw(server) as s:
                await s.send(garbage)
                with anyio.fail_after(5):
                    answer = await read_until_closed(s)
                assert answer.startswith(b"HTTP/1.1 4"), (garbage, answer)
                assert b"connection: close" in answer.lower()
        await health_ok(server.port)


async def test_stalled_half_request_cut_off_others_unaffected() -> None:
    async with running_server() as server, await raw(server) as stalled:
        await stalled.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        # While it stalls, others are served at once.
        for _ in range(10):
            await health_ok(server.port)
        with anyio.fail_after(TEST_LIMITS.header_timeout_s + 5):
            answer = await read_until_closed(stalled)
        assert answer.startswith(b"HTTP/1.1 408")
        assert error_code(answer) == "request_timeout"


async def test_stalled_body_cut_off() -> None:
    async with running_server() as server, await raw(server) as s:
        await s.send(
            b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"type":'
        )
        with anyio.fail_after(TEST_LIMITS.body_timeout_s + 5):
            answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 408")
        await health_ok(server.port)


async def test_silent_connection_closed_after_header_timeout() -> None:
    async with running_server() as server, await raw(server) as s:
        with anyio.fail_after(TEST_LIMITS.header_timeout_s + 5):
            assert await read_until_closed(s) == b""


async def test_idle_keep_alive_closed() -> None:
    async with running_server() as server, await raw(server) as s:
        await s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with anyio.fail_after(5):
            assert (await read_response(s)).startswith(b"HTTP/1.1 200")
        with anyio.fail_after(TEST_LIMITS.keep_alive_timeout_s + 5):
            assert await read_until_closed(s) == b""


async def test_200_idle_connections_while_requests_succeed() -> None:
    limits = msgspec.structs.replace(TEST_LIMITS, header_timeout_s=30.0)
    async with running_server(limits=limits) as server:
        idle = [await raw(server) for _ in range(200)]
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                for _ in range(20):
                    r = await c.get(f"http://127.0.0.1:{server.port}/api/v1/tasks/status/stats")
                    assert r.status_code == 200
                r = await c.post(
                    f"http://127.0.0.1:{server.port}/api/v1/tasks", json={"type": "default_task"}
                )
                assert r.status_code == 201
            assert server.connections >= 200
        finally:
            for s in idle:
                await s.aclose()


async def test_max_connections_cuts_the_longest_idle_to_make_room() -> None:
    # Past the cap a new connection is served and the connection idle the longest is closed
    # (503 for those being served is in test_server_slow_clients.py).
    limits = msgspec.structs.replace(TEST_LIMITS, max_connections=5, header_timeout_s=30.0)
    async with running_server(limits=limits) as server:
        held = []
        for _ in range(5):
            held.append(await raw(server))
            await wait_until(lambda: server.connections == len(held))
        try:
            async with await raw(server) as extra:
                await extra.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                with anyio.fail_after(5):
                    answer = await read_response(extra)
            assert answer.startswith(b"HTTP/1.1 200")
            with anyio.fail_after(5):
                assert await read_until_closed(held[0]) == b""  # idle: closed, no answer
            assert server.connections <= 5
        finally:
            for s in held:
                await s.aclose()
        await wait_until(lambda: server.connections == 0)
        await health_ok(server.port)


async def test_pipelining_and_max_requests_per_connection() -> None:
    limits = msgspec.structs.replace(TEST_LIMITS, max_requests_per_connection=3)
    async with running_server(limits=limits) as server, await raw(server) as s:
        await s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2)
        reader = ResponseReader(s)
        with anyio.fail_after(5):
            first = await reader.next()
            second = await reader.next()
        assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
        await s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with anyio.fail_after(5):
            third = await read_until_closed(s)
        assert third.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in third.lower()


async def test_expect_100_continue() -> None:
    async with running_server() as server, await raw(server) as s:
        body = b'{"type": "default_task"}'
        await s.send(
            b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        with anyio.fail_after(5):
            interim = await s.receive()
            assert interim.startswith(b"HTTP/1.1 100")
            await s.send(body)
            answer = await read_response(s)
        assert answer.startswith(b"HTTP/1.1 201")


async def test_client_vanishing_mid_request_is_harmless() -> None:
    async with running_server(make_config()) as server:
        for _ in range(20):
            s = await raw(server)
            await s.send(
                b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{"
            )
            await s.aclose()
        await health_ok(server.port)
