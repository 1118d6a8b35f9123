"""Where llhttp (httptools) differs from h11, the parser the server used before: each
leniency decided and pinned here, on a real server over raw loopback sockets.

Stricter than h11 (400, then closed): obs-fold, bare LF line ends, control characters in a
header value, a repeated ``Content-Length``, an unknown method. Refused on the head: any
version but HTTP/1.0 and 1.1 (505), ``Transfer-Encoding`` other than ``chunked`` (501).
Accepted: absolute-form targets (RFC 9112 §3.2.2: the authority is the host), trailing
whitespace in a header value (stripped), trailers of a chunked body (dropped). A request
after which llhttp switches protocols (``Connection: upgrade``) but that is no WebSocket is
answered, then its connection closed.
"""

from __future__ import annotations

import base64
import contextlib
import os

import anyio
import msgspec
import pytest
from server_helpers import TEST_LIMITS, read_until_closed, running_server
from wsproto.connection import Connection, ConnectionType
from wsproto.events import Ping, Pong

pytestmark = pytest.mark.anyio

HOST = b"Host: 127.0.0.1\r\n"
TASK = b'{"type": "default_task"}'


async def exchange(port: int, data: bytes, *, eof: bool = False) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as s:
        with contextlib.suppress(anyio.BrokenResourceError, ConnectionError):
            await s.send(data)
            if eof:
                await s.send_eof()
        with anyio.fail_after(5):
            return await read_until_closed(s)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def error_message(answer: bytes) -> str:
    return str(msgspec.json.decode(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"])


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(
            b"GET /health HTTP/1.1\r\n" + HOST + b"X-A: a\r\n b\r\n\r\n", 400, id="obs-fold"
        ),
        pytest.param(b"GET /health HTTP/1.1\nHost: 127.0.0.1\n\n", 400, id="bare-lf"),
        pytest.param(
            b"GET /health HTTP/1.1\r\n" + HOST + b"X-A: a\x01b\r\n\r\n", 400, id="ctl-in-value"
        ),
        pytest.param(
            b"GET /health HTTP/1.1\r\n" + HOST + b"X A: b\r\n\r\n", 400, id="space-in-name"
        ),
        pytest.param(
            b"GET /health HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n", 400, id="space-before-colon"
        ),
        pytest.param(
            b"POST /api/v1/tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
            b"Content-Length: 24\r\nContent-Length: 24\r\n\r\n" + TASK,
            400,
            id="duplicate-content-length",
        ),
        pytest.param(b"FOO /health HTTP/1.1\r\n" + HOST + b"\r\n", 400, id="unknown-method"),
        pytest.param(b"GET /health HTTP/1.1\r\n\r\n", 400, id="no-host"),
        pytest.param(b"GET /health HTTP/1.1\r\n" + HOST + HOST + b"\r\n", 400, id="two-hosts"),
        pytest.param(b"GET /health HTTP/2.0\r\n" + HOST + b"\r\n", 505, id="http-2.0"),
        pytest.param(b"GET /health\r\n\r\n", 505, id="http-0.9"),
        pytest.param(
            b"POST /api/v1/tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
            id="transfer-coding-not-chunked",
        ),
    ],
)
async def test_refused_and_closed(request_bytes: bytes, expected: int) -> None:
    async with running_server() as server:
        answer = await exchange(server.port, request_bytes + b"GET /health HTTP/1.1\r\n\r\n")
        assert status(answer) == expected, answer
        assert b"connection: close" in answer.lower()
        assert answer.count(b"HTTP/1.1 ") == 1  # what followed is never served
        # And the server goes on.
        ok = await exchange(server.port, b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n", eof=True)
        assert status(ok) == 200


async def test_http10_is_answered_and_closed() -> None:
    async with running_server() as server:
        answer = await exchange(
            server.port, b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2
        )
        assert status(answer) == 200, answer
        assert b"connection: close" in answer.lower()
        assert answer.count(b"HTTP/1.1 ") == 1


async def test_absolute_form_target_takes_its_host_from_the_authority() -> None:
    async with running_server() as server:
        ok = await exchange(
            server.port,
            b"GET http://localhost:8080/health?x=1 HTTP/1.1\r\nHost: ignored.example\r\n"
            b"Connection: close\r\n\r\n",
        )
        assert status(ok) == 200, ok
        # The Host rule applies to the authority, whatever the Host header says.
        foreign = await exchange(
            server.port,
            b"GET http://attacker.example/health HTTP/1.1\r\n"
            + HOST
            + b"Connection: close\r\n\r\n",
        )
        assert status(foreign) == 403, foreign


async def test_trailing_whitespace_in_a_header_value_is_stripped() -> None:
    async with running_server() as server:
        answer = await exchange(
            server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1 \t\r\n\r\n", eof=True
        )
        assert status(answer) == 200, answer


async def test_chunked_body_with_extension_and_trailer() -> None:
    async with running_server() as server:
        answer = await exchange(
            server.port,
            b"POST /api/v1/tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x;name=value\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n"
            % (len(TASK), TASK),
            eof=True,
        )
        assert status(answer) == 201, answer


async def test_upgrade_that_is_no_websocket_is_answered_then_closed() -> None:
    async with running_server() as server:
        answer = await exchange(
            server.port,
            b"GET /health HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n",
        )
        assert status(answer) == 200, answer
        assert b"connection: close" in answer.lower()
        assert answer.count(b"HTTP/1.1 ") == 1
        # llhttp leaves the body of such a request unread: refused, not served empty.
        with_body = await exchange(
            server.port,
            b"POST /api/v1/tasks HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: h2c\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(TASK), TASK),
        )
        assert status(with_body) == 400, with_body
        assert server.engine.stats().tasks.total == 0


async def test_garbage_after_a_pipelined_request() -> None:
    async with running_server() as server:
        answer = await exchange(
            server.port, b"GET /health HTTP/1.1\r\n" + HOST + b"\r\nNONSENSE\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert answer.count(b"HTTP/1.1 400") == 1


async def test_nothing_served_after_connection_close() -> None:
    async with running_server() as server:
        answer = await exchange(
            server.port,
            b"GET /health HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
            b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n",
        )
        assert answer.count(b"HTTP/1.1 ") == 1
        assert status(answer) == 200


async def test_one_header_line_growing_across_reads_is_cut_at_the_head_limit() -> None:
    # No header is complete, so no callback reports its size: what arrives counts.
    async with running_server() as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(b"GET /health HTTP/1.1\r\n" + HOST + b"X-Long: ")
            with contextlib.suppress(anyio.BrokenResourceError, ConnectionError):
                for _ in range(2 * TEST_LIMITS.max_header_bytes // 1024 + 1):
                    await s.send(b"y" * 1024)
                    await anyio.sleep(0.005)
            with anyio.fail_after(5):
                answer = await read_until_closed(s)
        assert status(answer) == 431, answer


async def test_client_closing_mid_head_gets_400() -> None:
    async with running_server() as server:
        answer = await exchange(server.port, b"GET /health HTTP/1.1\r\n" + HOST, eof=True)
        assert status(answer) == 400, answer
        assert "closed mid-request" in error_message(answer)


async def test_websocket_upgrade_pipelined_behind_a_request_with_a_frame_after_it() -> None:
    # Everything in one send: a GET, the upgrade, and a ping frame right behind it; what
    # llhttp leaves after the upgrade must reach wsproto.
    client = Connection(ConnectionType.CLIENT)
    key = base64.b64encode(os.urandom(16))
    async with running_server() as server:
        upgrade = (
            b"GET /api/v1/ws/tasks HTTP/1.1\r\n" + HOST + b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % key
        )
        async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
            await s.send(
                b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n" + upgrade + client.send(Ping(b"hi"))
            )
            data = b""
            with anyio.fail_after(5):
                while data.count(b"\r\n\r\n") < 2 or b"HTTP/1.1 101" not in data:
                    data += await s.receive()
                assert data.startswith(b"HTTP/1.1 200"), data
                frames = data.split(b"HTTP/1.1 101", 1)[1].split(b"\r\n\r\n", 1)[1]
                client.receive_data(frames)
                pongs: list[bytes] = []
                while not pongs:
                    pongs += [bytes(e.payload) for e in client.events() if isinstance(e, Pong)]
                    if not pongs:
                        client.receive_data(await s.receive())
        assert pongs == [b"hi"]


async def test_no_100_continue_when_the_body_came_with_the_head() -> None:
    async with running_server() as server:
        answer = await exchange(
            server.port,
            b"POST /api/v1/tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n%s" % (len(TASK), TASK),
            eof=True,
        )
        assert status(answer) == 201, answer
        assert b"HTTP/1.1 100" not in answer
